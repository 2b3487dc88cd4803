// Helpers shared by the kiosk and admin pages: DOM building (text only, never HTML), the API
// client, the camera, and face boxes. Everything hangs off one global, `RC`.
'use strict';

window.RC = (() => {
  /** Build an element. Strings among `children` become text nodes, so user data is never parsed. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const $ = (selector, root) => (root || document).querySelector(selector);

  /** The codes of docs/api.md the pages branch on (a Rust test checks each is one the server sends). */
  const SERVER_ERRORS = Object.freeze({
    notRecognised: 'not_recognised',
    noFace: 'no_face',
    busy: 'busy',
    unauthorized: 'unauthorized',
    forbidden: 'forbidden',
    tooManyAttempts: 'too_many_attempts',
    duplicate: 'duplicate',
    notLive: 'not_live',
    livenessOff: 'liveness_off',
  });
  /** `res.error` values to compare with: the server's, and `unreachable`, the client's own. */
  const errors = Object.freeze({ ...SERVER_ERRORS, unreachable: 'unreachable' });

  /**
   * Call the API. Never throws: returns `{ ok, status, data, error, message, retryAfter }` where
   * `error`/`message` come from the server's JSON error body, or `unreachable` when the request
   * never got an answer. A plain object `body` is sent as JSON; FormData as multipart. With
   * `options.key`, the request carries `Authorization: Bearer KEY` (a kiosk); without it, the
   * browser's session cookie is what identifies the caller (the admin page).
   */
  async function api(method, url, body, options) {
    const headers = { Accept: 'application/json' };
    if (options && options.key) headers.Authorization = `Bearer ${options.key}`;
    if (body && !(body instanceof FormData)) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, { method, body, headers, credentials: 'same-origin' });
    } catch (_) {
      return { ok: false, status: 0, error: errors.unreachable,
        message: 'Cannot reach the server. Check the network connection.' };
    }
    let data = null;
    const type = response.headers.get('Content-Type') || '';
    if (response.status !== 204 && type.includes('json')) {
      try { data = await response.json(); } catch (_) { data = null; }
    }
    if (response.ok) return { ok: true, status: response.status, data };
    const retryAfter = Number(response.headers.get('Retry-After')) || null;
    return {
      ok: false,
      status: response.status,
      data,
      error: (data && data.error) || `http_${response.status}`,
      message: (data && data.message) || `The server answered ${response.status} ${response.statusText}.`,
      retryAfter,
    };
  }

  /** "in 40 seconds", "in 15 minutes": when a Retry-After of `seconds` runs out. */
  function inWords(seconds) {
    const s = Math.max(1, Math.ceil(seconds));
    if (s < 90) return `in ${s} second${s === 1 ? '' : 's'}`;
    const m = Math.ceil(s / 60);
    if (m < 90) return `in ${m} minutes`;
    return `in ${Math.ceil(m / 60)} hours`;
  }

  /** "26 Nov 2026, 15:40" in the viewer's time zone; '' for a missing or bad time. */
  function dateTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleString([], { day: 'numeric', month: 'short', year: 'numeric',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  /**
   * A secret shown once: a warning, the text in a read-only field (selected on focus) and a Copy
   * button. The text goes in as a property, never as markup.
   */
  function secret(label, value, warning) {
    const field = h('input', { class: 'secret-value', readonly: true, 'aria-label': label, spellcheck: 'false' });
    field.value = value;
    field.addEventListener('focus', () => field.select());
    const status = h('span', { class: 'secret-copied', 'aria-live': 'polite' });
    const copy = h('button', { class: 'btn btn-primary btn-sm', type: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(value);
        status.textContent = 'Copied.';
      } catch (_) {
        // No clipboard (an insecure context or a refusal): leave it selected for Ctrl+C.
        field.focus();
        field.select();
        status.textContent = 'Selected: press Ctrl+C (or ⌘C) to copy.';
      }
    });
    return h('div', { class: 'secret notice notice-warn' },
      h('p', { class: 'secret-warning', text: warning }),
      h('div', { class: 'secret-row' }, field, copy),
      status);
  }

  // People with one name have an empty last name: no trailing space.
  const fullName = (p) => (p.last_name ? `${p.first_name} ${p.last_name}` : p.first_name);

  /** "08:59" in the viewer's time zone. */
  function time(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  /** "Tue 24 Nov 2026" for a "YYYY-MM-DD" day (days are UTC in the API). */
  function day(ymd, opts) {
    const d = new Date(`${ymd}T00:00:00Z`);
    if (Number.isNaN(d.getTime())) return ymd;
    return d.toLocaleDateString([], Object.assign(
      { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }, opts));
  }

  /** Today as "YYYY-MM-DD" in UTC, the API's notion of a day. */
  const todayUtc = () => new Date().toISOString().slice(0, 10);

  /** Shift a "YYYY-MM-DD" day by `n` days. */
  function addDays(ymd, n) {
    const d = new Date(`${ymd}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  /** Start a camera into `video`; resolves to the stream or rejects with a message for a person. */
  async function startCamera(video) {
    if (!window.isSecureContext) {
      throw new Error('The camera only works over https or on this computer (localhost). '
        + 'Open the page that way, or upload a photo instead.');
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('This browser cannot use a camera. Upload a photo instead.');
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' },
      });
    } catch (err) {
      throw new Error(cameraErrorMessage(err));
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    if (!video.videoWidth) {
      await new Promise((resolve) => video.addEventListener('loadedmetadata', resolve, { once: true }));
    }
    return stream;
  }

  function cameraErrorMessage(err) {
    switch (err && err.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'Camera access was denied. Allow the camera for this site in the browser settings, '
          + 'or upload a photo instead.';
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'No camera was found. Connect a camera, or upload a photo instead.';
      case 'NotReadableError':
      case 'AbortError':
        return 'The camera is busy or not working (is another program using it?). '
          + 'Upload a photo instead.';
      default:
        return `The camera could not be started (${(err && err.message) || err}). Upload a photo instead.`;
    }
  }

  function stopCamera(stream) {
    if (stream) stream.getTracks().forEach((t) => t.stop());
  }

  /** Grab the current video frame as a JPEG blob, unmirrored, at the camera's resolution. */
  function captureFrame(video, canvas) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve, reject) => canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error('Could not capture a frame.'))),
      'image/jpeg', 0.92));
  }

  /**
   * Draw face boxes on `canvas` (whose pixel size matches the image the boxes refer to, times
   * `scale`). `mirror` flips x for a mirrored preview; labels are drawn upright.
   */
  function drawBoxes(canvas, faces, { scale = 1, mirror = false } = {}) {
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    // Sizes in CSS pixels, whatever the photo's resolution and however small it is shown
    // (the canvas is scaled like the photo: object-fit: contain).
    const shown = Math.min(canvas.clientWidth / canvas.width, canvas.clientHeight / canvas.height);
    const k = shown > 0 ? 1 / shown : 1;
    const line = Math.max(1, Math.round(3 * k));
    const font = Math.round(16 * k);
    for (const face of faces || []) {
      let [x1, y1, x2, y2] = face.box.map((v) => v * scale);
      if (mirror) [x1, x2] = [canvas.width - x2, canvas.width - x1];
      const colour = face.colour || '#22c55e';
      ctx.lineWidth = line;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (face.label) {
        ctx.font = `600 ${font}px system-ui, sans-serif`;
        const pad = Math.round(font * 0.3);
        const w = ctx.measureText(face.label).width + 2 * pad;
        const top = y1 - font - 2 * pad >= 0 ? y1 - font - 2 * pad : y2;
        ctx.fillStyle = colour;
        ctx.fillRect(x1 - line / 2, top, w, font + 2 * pad);
        ctx.fillStyle = '#0b1220';
        ctx.textBaseline = 'top';
        ctx.fillText(face.label, x1 - line / 2 + pad, top + pad);
      }
    }
  }

  return { h, $, api, errors, inWords, dateTime, secret, fullName, time, day, todayUtc, addDays,
    startCamera, stopCamera, captureFrame, drawBoxes };
})();
