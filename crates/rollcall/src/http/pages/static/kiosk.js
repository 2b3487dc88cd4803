// The kiosk: a live camera preview; a check-in asks the server for a liveness challenge
// (POST /verify/challenge), shows its instruction large with a progress ring while it records
// about a second and a half of frames, and sends them with the challenge to POST /verify (a
// server run with `--liveness off` answers 409 and the kiosk sends one frame instead). The
// answer is shown large enough to read from a step away. One request at a time, always.
//
// A kiosk is paired once: an administrator opens `/#pair=KEY` on it; the page keeps the key in
// localStorage, drops it from the URL and sends it as `Authorization: Bearer KEY`. The key names
// the kiosk (check-ins are recorded under its name). Without a key, or once the server refuses
// it, the page says it is not paired instead of running the camera.
'use strict';

(() => {
  const { $, errors, fullName, time } = RC;

  const AUTO_INTERVAL_MS = 3000; // between automatic attempts
  const BOXES_MS = 5000; // how long face boxes stay over the preview
  const RESULT_MS = 10000; // how long an answer stays before the kiosk is "Ready" again
  const CHANGE_THRESHOLD = 6; // mean grey-level difference (0–255) that counts as "something changed"
  const PAIRING_KEY = 'rollcall.kioskKey';

  const els = {
    camera: $('#camera'),
    video: $('#video'),
    overlay: $('#overlay'),
    message: $('#camera-message'),
    messageText: $('#camera-message-text'),
    capture: $('#capture'),
    auto: $('#auto'),
    upload: $('#upload'),
    uploadLabel: $('#upload-label'),
    status: $('#status'),
    title: $('#status-title'),
    detail: $('#status-detail'),
    extra: $('#status-extra'),
    clock: $('#clock'),
    kioskChip: $('#kiosk-name'),
    kioskValue: $('#kiosk-name-value'),
    main: $('#kiosk-main'),
    unpaired: $('#unpaired'),
    unpairedDetail: $('#unpaired-detail'),
    challenge: $('#challenge'),
    challengeText: $('#challenge-text'),
    challengeRing: $('#challenge-ring'),
  };
  const FRAMES = 10; // frames sent per challenge (the server takes its `frames.min`–`frames.max`)
  let liveness = true; // false once the server says it gives no challenges
  const frame = document.createElement('canvas'); // the captured frame, never shown
  const sampler = document.createElement('canvas'); // a thumbnail for change detection
  sampler.width = 32;
  sampler.height = 24;

  let stream = null;
  let busy = false;
  let lastSentAt = 0;
  let notBefore = 0; // set from Retry-After
  let lastSignature = null;
  let lastState = 'idle';
  let still = null; // an uploaded photo shown instead of the preview
  let boxesTimer = 0;
  let resultTimer = 0;

  // ---- pairing ----------------------------------------------------------------------------
  let key = null; // this kiosk's key, once paired

  function storedKey() {
    try {
      return localStorage.getItem(PAIRING_KEY);
    } catch (_) {
      return null; // storage disabled: the kiosk cannot stay paired
    }
  }

  /** `/#pair=KEY`: keep the key, and take it out of the address bar and the history at once. */
  function adoptPairingLink() {
    const hash = window.location.hash;
    if (!hash.startsWith('#pair=')) return;
    const pairing = decodeURIComponent(hash.slice('#pair='.length)).trim();
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
    if (!pairing) return;
    try {
      localStorage.setItem(PAIRING_KEY, pairing);
    } catch (_) { /* private mode: paired until the page is closed */ }
    key = pairing;
  }

  function forgetKey() {
    key = null;
    try {
      localStorage.removeItem(PAIRING_KEY);
    } catch (_) { /* ignore */ }
  }

  /** No usable key: no camera, no check-ins, just what to do about it. */
  function showUnpaired(detail) {
    RC.stopCamera(stream);
    stream = null;
    els.auto.checked = false;
    els.main.hidden = true;
    els.kioskChip.hidden = true;
    if (detail) els.unpairedDetail.textContent = detail;
    els.unpaired.hidden = false;
  }

  const REVOKED = 'Its key was revoked or is no longer valid, so this kiosk has forgotten it. '
    + 'An administrator can pair it again from the admin page (Keys → Pair a kiosk).';

    // ---- clock ------------------------------------------------------------------------------
  function tick() {
    const now = new Date();
    els.clock.textContent = time(now.toISOString());
    els.clock.dateTime = now.toISOString();
  }

  // ---- status panel -----------------------------------------------------------------------
  function setStatus(state, title, detail, extra) {
    lastState = state;
    els.status.dataset.state = state;
    els.title.textContent = title;
    els.detail.textContent = detail || '';
    els.extra.textContent = extra || '';
    clearTimeout(resultTimer);
    if (state !== 'idle' && state !== 'busy') resultTimer = setTimeout(showReady, RESULT_MS);
  }
  function showReady() {
    const how = els.auto.checked ? 'Just look at the camera.' : 'Look at the camera and press Check in.';
    setStatus('idle', 'Ready', stream ? how : 'Upload a photo to check in.');
  }

  const num = (n) => (typeof n === 'number' ? n.toFixed(3) : '?');

  function showAnswer(res) {
    if (res.ok) {
      const d = res.data;
      const at = d.attendance && d.attendance.at ? time(d.attendance.at) : time(new Date().toISOString());
      const score = `Similarity ${num(d.similarity)} (threshold ${num(d.threshold)})`;
      if (d.checked_in) setStatus('welcome', `Welcome, ${fullName(d)}`, `Checked in ${at}`, score);
      else setStatus('already', `Welcome, ${fullName(d)}`, `Already checked in at ${at}`, score);
      return;
    }
    const data = res.data || {};
    switch (res.error) {
      case errors.notRecognised: {
        const best = data.faces && data.faces[0] && data.faces[0].best_similarity;
        const extra = typeof best === 'number' ? `Closest match ${num(best)}, needed ${num(data.threshold)}` : '';
        setStatus('unknown', 'Not recognised', 'Try again, or ask at the desk to be registered.', extra);
        break;
      }
      case errors.notLive:
        setStatus('unknown', 'Not checked in', res.message);
        break;
      case errors.noFace:
        setStatus('noface', 'No face found — look at the camera', 'Stand in front of the camera, face it, and try again.');
        break;
      case errors.unreachable:
        setStatus('offline', 'Server unreachable', res.message);
        break;
      case errors.busy:
        setStatus('error', 'Busy — one moment', res.message);
        break;
      default:
        setStatus('error', 'Could not check in', res.message);
    }
  }

  // ---- face boxes -------------------------------------------------------------------------
  function showBoxes(faces, width, height) {
    if (!faces || !faces.length) return;
    els.overlay.width = width;
    els.overlay.height = height;
    const boxes = faces.map((f) => ({
      box: f.box,
      colour: f.match ? '#22c55e' : '#f59e0b',
      label: f.match ? fullName(f.match) : 'Unknown',
    }));
    RC.drawBoxes(els.overlay, boxes, { mirror: !still });
  }
  function clearBoxes() {
    const ctx = els.overlay.getContext('2d');
    ctx.clearRect(0, 0, els.overlay.width, els.overlay.height);
    if (still) {
      still.remove();
      still = null;
    }
  }

  // ---- sending ----------------------------------------------------------------------------
  function setBusy(value) {
    busy = value;
    els.capture.disabled = value || !stream;
    els.upload.disabled = value;
    els.uploadLabel.classList.toggle('disabled', value);
    els.capture.textContent = value ? 'Checking…' : 'Check in';
  }

  /** The answer to one check-in: one photo, or the frames of a challenge (`nonce`). */
  async function send(blobs, filename, size, nonce) {
    setBusy(true);
    lastSentAt = Date.now();
    setStatus('busy', 'Checking…', nonce ? 'One moment.' : 'Hold still for a moment.');
    try {
      const form = new FormData();
      if (nonce) form.append('challenge', nonce);
      blobs.forEach((blob, i) => form.append('image', blob, blobs.length > 1 ? `frame${i}.jpg` : filename));
      const res = await RC.api('POST', '/verify', form, { key });
      if (res.error === errors.unauthorized) {
        // A refused key is forgotten; without one, the server stopped letting anyone check in.
        const hadKey = Boolean(key);
        forgetKey();
        showUnpaired(hadKey ? REVOKED : undefined);
        return;
      }
      if (res.retryAfter) notBefore = Date.now() + res.retryAfter * 1000;
      showAnswer(res);
      const faces = res.data && res.data.faces;
      if (Array.isArray(faces)) showBoxes(faces, size.width, size.height);
    } catch (err) {
      setStatus('error', 'Something went wrong', String((err && err.message) || err));
    } finally {
      clearTimeout(boxesTimer);
      boxesTimer = setTimeout(clearBoxes, BOXES_MS);
      setBusy(false);
    }
  }

  /** The unauthorised and offline answers end a check-in before any recording. */
  function refusedEarly(res) {
    if (res.error === errors.unauthorized) {
      const hadKey = Boolean(key);
      forgetKey();
      showUnpaired(hadKey ? REVOKED : undefined);
      return true;
    }
    if (!res.ok) {
      if (res.retryAfter) notBefore = Date.now() + res.retryAfter * 1000;
      showAnswer(res);
      return true;
    }
    return false;
  }

  /** Show the instruction and fill the ring while `frames` frames are taken over `ms`. */
  async function record(instruction, ms, count) {
    els.challengeText.textContent = instruction.text;
    els.challenge.hidden = false;
    setStatus('busy', instruction.text, 'Keep your face in view.');
    const blobs = [];
    const started = performance.now();
    for (let i = 0; i < count; i += 1) {
      const due = started + (ms * i) / Math.max(1, count - 1);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const canvas = document.createElement('canvas');
      blobs.push(await RC.captureFrame(els.video, canvas));
      els.challengeRing.style.strokeDasharray = `${(100 * (i + 1)) / count} 100`;
    }
    return blobs;
  }

  async function captureAndSend() {
    if (busy || !stream || !els.video.videoWidth) return;
    busy = true; // never two check-ins at once, the challenge request included
    clearBoxes();
    lastSignature = signature();
    const size = { width: els.video.videoWidth, height: els.video.videoHeight };
    try {
      if (liveness) {
        const res = await RC.api('POST', '/verify/challenge', undefined, { key });
        if (res.error === errors.livenessOff) {
          liveness = false;
        } else if (refusedEarly(res)) {
          return;
        } else {
          const c = res.data;
          const count = Math.min(c.frames.max, Math.max(c.frames.min, FRAMES));
          const blobs = await record(c.instruction, c.duration_ms, count);
          els.challenge.hidden = true;
          await send(blobs, 'frame.jpg', size, c.nonce);
          return;
        }
      }
      const blob = await RC.captureFrame(els.video, frame);
      await send([blob], 'frame.jpg', size);
    } catch (err) {
      setStatus('error', 'Could not capture a picture', String((err && err.message) || err));
    } finally {
      els.challenge.hidden = true;
      els.challengeRing.style.strokeDasharray = '0 100';
      setBusy(false);
    }
  }

  async function sendUpload(file) {
    if (busy || !file) return;
    clearBoxes();
    const img = new Image();
    img.className = 'still';
    img.alt = 'The uploaded photo';
    img.src = URL.createObjectURL(file);
    try {
      await img.decode();
    } catch (_) {
      setStatus('error', 'That file is not a picture', 'Choose a JPEG or PNG photo.');
      return;
    }
    still = img;
    els.camera.insertBefore(img, els.overlay);
    await send([file], file.name || 'photo.jpg', { width: img.naturalWidth, height: img.naturalHeight });
  }

  els.capture.addEventListener('click', captureAndSend);
  els.upload.addEventListener('change', () => {
    const file = els.upload.files && els.upload.files[0];
    els.upload.value = ''; // choosing the same file again still fires `change`
    sendUpload(file);
  });
  document.addEventListener('keydown', (e) => {
    // A keyboard or foot pedal on a kiosk: space/enter anywhere outside a form control checks in.
    if ((e.key === ' ' || e.key === 'Enter') && e.target === document.body) {
      e.preventDefault();
      captureAndSend();
    }
  });

  // ---- automatic mode ---------------------------------------------------------------------
  /** A 32×24 grey thumbnail of the preview, to tell whether anything moved since the last send. */
  function signature() {
    if (!els.video.videoWidth) return null;
    const ctx = sampler.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(els.video, 0, 0, sampler.width, sampler.height);
    const px = ctx.getImageData(0, 0, sampler.width, sampler.height).data;
    const grey = new Uint8Array(sampler.width * sampler.height);
    for (let i = 0; i < grey.length; i += 1) {
      grey[i] = (px[4 * i] * 77 + px[4 * i + 1] * 150 + px[4 * i + 2] * 29) >> 8;
    }
    return grey;
  }
  function changedSinceLastSend() {
    const now = signature();
    if (!now || !lastSignature) return true;
    let sum = 0;
    for (let i = 0; i < now.length; i += 1) sum += Math.abs(now[i] - lastSignature[i]);
    return sum / now.length > CHANGE_THRESHOLD;
  }
  function autoTick() {
    if (!els.auto.checked || busy || !stream || document.hidden) return;
    const now = Date.now();
    if (now - lastSentAt < AUTO_INTERVAL_MS || now < notBefore) return;
    // An answer that depended on the picture stands until the picture changes; a failure is retried.
    const retry = lastState === 'error' || lastState === 'offline';
    if (retry || changedSinceLastSend()) captureAndSend();
  }
  els.auto.addEventListener('change', () => {
    try {
      localStorage.setItem('rollcall.auto', els.auto.checked ? '1' : '0');
    } catch (_) { /* ignore */ }
    lastSignature = null;
    if (lastState === 'idle') showReady();
  });

  // ---- camera -----------------------------------------------------------------------------
  function cameraFailed(message) {
    els.camera.dataset.state = 'failed';
    els.messageText.textContent = message;
    els.message.hidden = false;
    els.uploadLabel.classList.add('btn-primary');
    els.uploadLabel.classList.remove('btn-ghost');
    els.capture.disabled = true;
    els.auto.disabled = true;
    showReady();
  }

  async function startCamera() {
    try {
      stream = await RC.startCamera(els.video);
    } catch (err) {
      cameraFailed(err.message);
      return;
    }
    els.camera.dataset.state = 'live';
    const fitBox = () => {
      if (els.video.videoWidth) els.camera.style.setProperty('--ar', `${els.video.videoWidth} / ${els.video.videoHeight}`);
    };
    fitBox();
    els.video.addEventListener('resize', fitBox); // e.g. a phone turned on its side
    els.video.classList.add('mirror');
    stream.getVideoTracks().forEach((track) => track.addEventListener('ended', () => {
      stream = null;
      cameraFailed('The camera was disconnected. Reload the page to try again, or upload a photo.');
    }));
    els.capture.disabled = busy;
    showReady();
    keepAwake();
  }

  /** A kiosk screen should not go dark while it waits for people (where the browser allows). */
  function keepAwake() {
    if (!('wakeLock' in navigator)) return;
    const request = () => navigator.wakeLock.request('screen').catch(() => {});
    request();
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') request();
    });
  }

  // ---- start ------------------------------------------------------------------------------
  /**
   * Ask the server who this kiosk is: a key's name goes in the header. Without a key the kiosk
   * only works when the server lets anyone check in (`--anonymous-verify`, a trusted network).
   */
  async function identify() {
    const res = await RC.api('GET', '/me', undefined, { key });
    const d = res.data || {};
    if (key && (res.error === errors.unauthorized || (res.ok && d.kind !== 'key'))) {
      forgetKey();
      showUnpaired(REVOKED);
      return false;
    }
    if (!key && !(res.ok && d.anonymous_verify)) {
      showUnpaired();
      return false;
    }
    // Unreachable or an odd answer: stay paired; check-ins say what is wrong.
    els.kioskValue.textContent = key ? (res.ok && d.name) || 'Kiosk' : 'anonymous';
    els.kioskChip.hidden = false;
    return true;
  }

  async function start() {
    tick();
    setInterval(tick, 1000);
    adoptPairingLink();
    key = key || storedKey();
    if (!(await identify())) return;
    els.main.hidden = false;
    try {
      els.auto.checked = localStorage.getItem('rollcall.auto') === '1';
    } catch (_) { /* ignore */ }
    setInterval(autoTick, 500);
    showReady();
    startCamera();
  }
  start();
})();
