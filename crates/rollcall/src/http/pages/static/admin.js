// The admin page: signing in (login, first-run setup, logout), people (list, register, delete,
// each person's reference photos: list, add, delete), attendance (chart, day summary, log, CSV),
// keys (kiosk pairing, create, revoke), the audit log and the run-time settings. A viewer sees
// people (and their photos) and attendance only. All user-provided text goes into the page as text nodes
// (RC.h), never as HTML.
'use strict';

(() => {
  const { h, $, errors, fullName, time, day, todayUtc, addDays, dateTime } = RC;

  let users = [];
  /** The signed-in account `{ name, role }`, or null while nobody is. */
  let me = null;

  /** Counts sign-outs: an answer to a request made before the last one is not drawn. */
  let signOuts = 0;

  /**
   * RC.api for the sections behind the login: a 401 means the session ended (expired, logged
   * out elsewhere, the password was reset), so the page goes back to the login screen. Answers
   * that arrive after a sign-out never resolve, so nothing of the old session is drawn again.
   */
  async function api(method, url, body) {
    const asked = signOuts;
    const res = await RC.api(method, url, body);
    if (asked === signOuts && res.status === 401 && me) auth.signedOut('Your session has ended. Log in again.');
    if (asked !== signOuts) return new Promise(() => {});
    return res;
  }

  // ---- tabs -------------------------------------------------------------------------------
  const ALL_TABS = ['people', 'register', 'attendance', 'keys', 'audit', 'settings'];
  const ADMIN_TABS = ['register', 'keys', 'audit', 'settings'];
  let TABS = ALL_TABS;
  function showTab(name) {
    if (!me) return;
    if (!TABS.includes(name)) name = 'people';
    for (const tab of ALL_TABS) {
      const selected = tab === name;
      $(`#tab-${tab}`).setAttribute('aria-selected', String(selected));
      $(`#tab-${tab}`).tabIndex = selected ? 0 : -1;
      $(`#panel-${tab}`).hidden = !selected;
    }
    if (name !== 'register') register.stopCamera();
    if (name === 'attendance') attendance.refresh();
    if (name === 'people') people.load();
    if (name === 'keys') keys.load();
    if (name === 'audit') audit.load();
    if (name === 'settings') settings.load();
  }
  for (const button of document.querySelectorAll('.tab')) {
    button.addEventListener('click', () => {
      window.location.hash = button.dataset.tab;
    });
    button.addEventListener('keydown', (e) => {
      // Arrow keys move between tabs, as in any tab list.
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = TABS[(TABS.indexOf(button.dataset.tab) + step + TABS.length) % TABS.length];
      if (!next) return;
      window.location.hash = next;
      $(`#tab-${next}`).focus();
    });
  }
  window.addEventListener('hashchange', () => showTab(window.location.hash.slice(1)));

  function notice(container, kind, text) {
    container.replaceChildren(text ? h('p', { class: `notice notice-${kind}`, text }) : '');
  }

  // ---- server state -----------------------------------------------------------------------
  async function health() {
    const el = $('#server-state');
    const res = await api('GET', '/health');
    const d = res.data || {};
    // Short words in the bar (it also holds the tabs and the account); the details as a tooltip.
    if (res.ok) {
      el.dataset.state = 'ok';
      el.textContent = 'Server OK';
      el.title = `Server OK · ${d.embedder || d.model || 'model ?'} · ${d.users ?? '?'} registered`;
      $('#threshold-state').textContent = thresholdLine(d);
    } else if (res.status === 0) {
      el.dataset.state = 'down';
      el.textContent = 'Server unreachable';
      el.title = el.textContent;
    } else {
      el.dataset.state = 'down';
      el.textContent = d.database === 'unavailable' ? 'Database unavailable' : `Server error (${res.status})`;
      el.title = el.textContent;
    }
  }

  // "threshold in force 0.9505, margin 0.025 — at most 1 stranger in 1,000 attempts, 91 people"
  function thresholdLine(d) {
    if (typeof d.threshold !== 'number') return '';
    // Four decimals at most (derived values lie on a 0.0005 grid), no trailing zeros; the
    // margin (how much the best person must beat the next one by) only when there is one.
    const decimals = (x) => String(+x.toFixed(4));
    const margin = d.margin > 0 ? `, margin ${decimals(d.margin)}` : '';
    const t = `threshold in force ${decimals(d.threshold)}${margin}`;
    if (d.threshold_source === 'configured') return `${t} (set by the configuration)`;
    if (d.threshold_source === 'default') return `${t} (the model's default: too few people to derive one)`;
    const attempts = Math.round(1 / d.false_accept_rate).toLocaleString('en');
    const people = `${d.gallery_people} ${d.gallery_people === 1 ? 'person' : 'people'}`;
    return `${t} — at most 1 stranger in ${attempts} attempts, ${people}`;
  }

  // ---- people -----------------------------------------------------------------------------
  const people = (() => {
    const list = $('#people-list');
    const search = $('#people-search');
    const dialog = $('#delete-dialog');
    let pending = null; // the person the delete dialog is about

    async function load() {
      const res = await api('GET', '/users');
      if (!res.ok) {
        notice($('#people-notice'), 'error', `Could not load people: ${res.message}`);
        return;
      }
      users = res.data || [];
      render();
      attendance.fillPeople();
    }

    function render() {
      const query = search.value.trim().toLocaleLowerCase();
      const shown = users.filter((u) => !query || fullName(u).toLocaleLowerCase().includes(query));
      $('#people-count').textContent = users.length === 1 ? '1 person registered' : `${users.length} people registered`;
      $('#people-empty').hidden = users.length > 0;
      list.replaceChildren(...shown.map(card));
      if (users.length && !shown.length) list.append(h('li', { class: 'empty' }, 'Nobody matches this search.'));
    }

    function card(u) {
      const name = fullName(u);
      const registered = u.created_at ? day(u.created_at.slice(0, 10), { weekday: undefined }) : '';
      const faces = u.faces === 1 ? '1 photo' : `${u.faces ?? '?'} photos`;
      // A cache-busting query: face 0 changes when it is deleted and another takes its place.
      const src = `${u.image_url || `/users/${u.id}/photo`}?faces=${u.faces}`;
      return h('li', { class: 'person', 'data-user-id': u.id, 'data-faces': u.faces },
        h('img', { src, alt: `Reference photo of ${name}`, loading: 'lazy', width: 200, height: 200 }),
        h('div', { class: 'person-body' },
          h('span', { class: 'person-name', text: name }),
          h('span', { class: 'person-meta', text: registered ? `Registered ${registered}` : '' }),
          h('span', { class: 'person-meta person-faces', text: [faces, u.model].filter(Boolean).join(' · ') }),
          h('div', { class: 'person-actions' },
            h('button', { class: 'btn btn-ghost btn-sm person-photos', type: 'button', 'aria-label': `Photos of ${name}`, onclick: () => photos.open(u) }, 'Photos'),
            isAdmin() ? h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', 'aria-label': `Delete ${name}`, onclick: () => confirmDelete(u) }, 'Delete') : null)));
    }

    function confirmDelete(u) {
      pending = u;
      $('#delete-title').textContent = `Delete ${fullName(u)}?`;
      $('#delete-history').checked = false;
      dialog.showModal();
    }

    dialog.addEventListener('close', async () => {
      const u = pending;
      pending = null;
      if (dialog.returnValue !== 'delete' || !u) return;
      const history = $('#delete-history').checked;
      const res = await api('DELETE', `/users/${encodeURIComponent(u.id)}?history=${history}`);
      if (res.ok) {
        notice($('#people-notice'), 'ok', `${fullName(u)} was deleted${history ? ' with their attendance history' : ''}.`);
      } else {
        notice($('#people-notice'), 'error', `Could not delete ${fullName(u)}: ${res.message}`);
      }
      load();
      health();
    });

    function clear() {
      users = [];
      list.replaceChildren();
      search.value = '';
    }

    search.addEventListener('input', render);
    $('#people-add').addEventListener('click', () => { window.location.hash = 'register'; });
    return { load, clear };
  })();

  // ---- a person's reference photos ----------------------------------------------------------
  const photos = (() => {
    const dialog = $('#photos-dialog');
    const list = $('#photos-list');
    const say = (kind, text) => notice($('#photos-notice'), kind, text);
    const webcam = $('#photos-webcam');
    const snap = $('#photos-snap');
    const cameraBox = $('#photos-camera');
    const frame = document.createElement('canvas');
    let person = null; // the user the dialog shows
    let stream = null;
    let video = null;
    let busy = false;

    const SOURCES = { upload: 'Uploaded', webcam: 'Webcam', kiosk: 'Kiosk check-in', cli: 'Command line' };

    async function open(u) {
      person = u;
      $('#photos-title').textContent = `Photos of ${fullName(u)}`;
      say('', '');
      list.replaceChildren();
      $('#photos-add').hidden = !isAdmin();
      dialog.showModal();
      await load();
    }

    async function load() {
      if (!person) return;
      const u = person;
      const res = await api('GET', `/users/${encodeURIComponent(u.id)}/faces`);
      if (person !== u) return;
      if (!res.ok) {
        say('error', `Could not load the photos: ${res.message}`);
        return;
      }
      const faces = res.data || [];
      list.replaceChildren(...faces.map((f) => item(u, f, faces.length)));
    }

    function item(u, f, count) {
      const when = dateTime(f.created_at);
      const text = `${SOURCES[f.source] || f.source}${when ? ` · ${when}` : ''}`;
      let remove = null;
      if (isAdmin()) {
        // Two clicks, so that a photo is not lost to a stray one; the only photo cannot go.
        remove = h('button', { class: 'btn btn-danger-ghost btn-sm photo-delete', type: 'button', 'aria-label': `Delete this photo of ${fullName(u)}` }, 'Delete');
        if (count < 2) {
          remove.disabled = true;
          remove.title = 'The only photo: delete the person instead.';
        }
        remove.addEventListener('click', () => {
          if (remove.dataset.armed) deleteFace(u, f);
          else {
            remove.dataset.armed = 'yes';
            remove.textContent = 'Delete for good';
          }
        });
      }
      return h('li', { class: 'photo-item', 'data-face-id': f.id },
        h('img', { src: f.photo_url, alt: `Photo of ${fullName(u)}: ${text}`, loading: 'lazy', width: 140, height: 140 }),
        h('span', { text }),
        remove);
    }

    async function changed(text) {
      say('ok', text);
      await load();
      people.load();
      health();
    }

    async function deleteFace(u, f) {
      const res = await api('DELETE', `/users/${encodeURIComponent(u.id)}/faces/${encodeURIComponent(f.id)}`);
      if (res.ok) await changed('The photo was deleted.');
      else say('error', `Could not delete the photo: ${res.message}`);
    }

    /** POST the photos as one request: all are added, or none. */
    async function add(files, source) {
      if (!person || busy || !files.length) return;
      busy = true;
      say('warn', files.length === 1 ? 'Adding the photo…' : `Adding ${files.length} photos…`);
      const body = new FormData();
      for (const f of files) body.append('image', f.blob, f.name);
      body.append('source', source);
      const res = await api('POST', `/users/${encodeURIComponent(person.id)}/faces`, body)
        .catch((err) => ({ ok: false, message: String(err) }));
      busy = false;
      if (res.ok) {
        await changed(files.length === 1 ? 'The photo was added.' : `${files.length} photos were added.`);
      } else {
        // Nothing was added; the message says which photo and why (its advice for a poor one).
        say('error', `Nothing was added: ${res.message}`);
      }
    }

    async function startCamera() {
      cameraBox.hidden = false;
      cameraBox.classList.add('has-photo');
      video = h('video', { autoplay: true, playsinline: true, muted: true, class: 'mirror', 'aria-label': 'Webcam preview' });
      cameraBox.replaceChildren(video);
      try {
        stream = await RC.startCamera(video);
      } catch (err) {
        stopCamera();
        say('error', err.message);
        return;
      }
      webcam.hidden = true;
      snap.hidden = false;
    }

    function stopCamera() {
      RC.stopCamera(stream);
      stream = null;
      if (video) video.remove();
      video = null;
      cameraBox.hidden = true;
      webcam.hidden = false;
      snap.hidden = true;
    }

    async function takePhoto() {
      if (!video || !video.videoWidth) return;
      const blob = await RC.captureFrame(video, frame);
      stopCamera();
      add([{ blob, name: 'webcam.jpg' }], 'webcam');
    }

    webcam.addEventListener('click', startCamera);
    snap.addEventListener('click', takePhoto);
    $('#photos-file').addEventListener('change', (e) => {
      const files = [...(e.target.files || [])].map((f) => ({ blob: f, name: f.name || 'photo.jpg' }));
      e.target.value = '';
      add(files, 'upload');
    });
    $('#photos-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      stopCamera();
      person = null;
    });
    return { open };
  })();

  // ---- register ---------------------------------------------------------------------------
  const register = (() => {
    const form = $('#register-form');
    const box = $('#photo-box');
    const placeholder = $('#photo-placeholder');
    const result = $('#detect-result');
    const save = $('#register-save');
    const webcam = $('#register-webcam');
    const snap = $('#register-snap');
    const fileInput = $('#register-file');
    const frame = document.createElement('canvas');
    let photo = null; // { blob, name, url }
    let extras = []; // more photos chosen with the first, each one more reference face
    let faces = 0;
    let found = []; // the faces /detect gave, largest first
    let subject = null; // the face the server takes on its own (null: none is clear)
    let chosen = null; // the face the user clicked, sent as `face`
    let overlay = null;
    let duplicateOf = null; // the last 409 duplicate, until the user registers anyway
    let stream = null;
    let video = null;
    let saving = false;
    let generation = 0; // ignores /detect answers for a photo that was since replaced

    function clearBox() {
      box.querySelectorAll('img, canvas, video').forEach((el) => el.remove());
      box.classList.remove('has-photo');
      placeholder.hidden = false;
      if (photo) URL.revokeObjectURL(photo.url);
      photo = null;
      extras = [];
      showExtras();
      faces = 0;
      found = [];
      subject = null;
      chosen = null;
      overlay = null;
      duplicateOf = null;
      updateSave();
    }

    function showExtras() {
      const line = $('#register-extra');
      line.hidden = extras.length === 0;
      line.textContent = extras.length === 1
        ? 'And 1 more photo, as a second reference (it needs one clear face).'
        : `And ${extras.length} more photos, as more references (each needs one clear face).`;
    }

    /** The face that will be registered: the one clicked, else the server's clear subject. */
    const target = () => (chosen !== null ? chosen : subject);

    function updateSave() {
      save.disabled = saving || !photo || faces < 1 || target() === null;
    }

    /** Boxes on the photo: the face to register green, the others amber, numbered from 1. */
    function drawFaces() {
      if (!overlay) return;
      RC.drawBoxes(overlay, found.map((f, i) => ({
        box: f.box,
        colour: i === target() ? '#22c55e' : '#f59e0b',
        label: found.length > 1 ? `Face ${i + 1}` : 'Face',
      })));
    }

    /** What the server will do with this photo, in words. */
    function describeFaces() {
      if (faces === 0) notice(result, 'error', 'No face found in this photo. Choose another one.');
      else if (faces === 1) notice(result, 'ok', `One face found (detector confidence ${(found[0].probability * 100).toFixed(1)}%). Ready to save.`);
      else if (chosen !== null) notice(result, 'ok', `Face ${chosen + 1} (green) will be registered. Click another face to change.`);
      else if (subject !== null) notice(result, 'ok', `${faces} faces found. Face ${subject + 1} (green) will be registered; click another face to register that one instead.`);
      else notice(result, 'warn', `${faces} faces found and none is clearly the person: click the face to register.`);
    }

    /** A click on the photo picks the face under it (the smallest, where boxes overlap). */
    function pickAt(event) {
      if (!overlay || found.length < 2) return;
      const rect = overlay.getBoundingClientRect();
      // The canvas is drawn like the photo (object-fit: contain): undo the letterboxing.
      const k = Math.min(rect.width / overlay.width, rect.height / overlay.height);
      const x = (event.clientX - rect.left - (rect.width - overlay.width * k) / 2) / k;
      const y = (event.clientY - rect.top - (rect.height - overlay.height * k) / 2) / k;
      let best = null;
      found.forEach((f, i) => {
        const [x1, y1, x2, y2] = f.box;
        const area = (x2 - x1) * (y2 - y1);
        if (x >= x1 && x <= x2 && y >= y1 && y <= y2 && (best === null || area < best.area)) best = { i, area };
      });
      if (best === null) return;
      chosen = best.i;
      duplicateOf = null;
      drawFaces();
      describeFaces();
      updateSave();
    }

    async function setPhoto(blob, name) {
      stopCamera();
      clearBox();
      const mine = ++generation;
      const url = URL.createObjectURL(blob);
      const img = h('img', { alt: 'The photo to register' });
      img.src = url;
      try {
        await img.decode();
      } catch (_) {
        URL.revokeObjectURL(url);
        notice(result, 'error', 'That file is not a picture this browser can show. Choose a JPEG or PNG photo.');
        return;
      }
      photo = { blob, name, url };
      placeholder.hidden = true;
      box.classList.add('has-photo');
      overlay = h('canvas', { 'aria-hidden': 'true', class: 'pickable' });
      overlay.addEventListener('click', pickAt);
      box.append(img, overlay);
      notice(result, 'warn', 'Looking for a face…');
      const body = new FormData();
      body.append('image', blob, name);
      const res = await api('POST', '/detect', body);
      if (mine !== generation) return;
      if (!res.ok) {
        faces = 0;
        updateSave();
        const text = res.error === errors.noFace ? 'No face found in this photo. Choose another one.' : res.message;
        notice(result, 'error', text);
        return;
      }
      found = res.data.faces || [];
      faces = found.length;
      subject = Number.isInteger(res.data.subject) ? res.data.subject : null;
      overlay.width = res.data.width;
      overlay.height = res.data.height;
      drawFaces();
      describeFaces();
      updateSave();
    }

    async function startCamera() {
      clearBox();
      notice(result, '', '');
      video = h('video', { autoplay: true, playsinline: true, muted: true, class: 'mirror', 'aria-label': 'Webcam preview' });
      placeholder.hidden = true;
      box.classList.add('has-photo');
      box.append(video);
      try {
        stream = await RC.startCamera(video);
      } catch (err) {
        video.remove();
        video = null;
        box.classList.remove('has-photo');
        placeholder.hidden = false;
        notice(result, 'error', err.message);
        return;
      }
      webcam.hidden = true;
      snap.hidden = false;
      snap.focus();
    }

    function stopCamera() {
      RC.stopCamera(stream);
      stream = null;
      if (video) video.remove();
      video = null;
      webcam.hidden = false;
      snap.hidden = true;
    }

    async function takePhoto() {
      if (!video || !video.videoWidth) return;
      const blob = await RC.captureFrame(video, frame);
      setPhoto(blob, 'webcam.jpg');
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const first = $('#first-name').value.trim();
      // The last name may stay empty: people with one name (Bono, Pelé) are registered as such.
      const last = $('#last-name').value.trim();
      if (!first) {
        notice(result, 'error', 'Enter a first name (a last name is optional).');
        $('#first-name').focus();
        return;
      }
      if (!photo || faces < 1 || target() === null || saving) return;
      send(first, last, false);
    });

    async function send(first, last, allowDuplicate) {
      saving = true;
      updateSave();
      save.textContent = 'Saving…';
      const body = new FormData();
      body.append('first_name', first);
      body.append('last_name', last);
      body.append('image', photo.blob, photo.name);
      for (const extra of extras) body.append('image', extra, extra.name || 'photo.jpg');
      if (photo.name === 'webcam.jpg') body.append('source', 'webcam');
      if (chosen !== null) body.append('face', String(chosen));
      if (allowDuplicate) body.append('allow_duplicate', 'true');
      const res = await api('POST', '/register', body).catch((err) => ({ ok: false, message: String(err) }));
      saving = false;
      save.textContent = 'Save person';
      if (res.ok) {
        form.reset();
        clearBox();
        notice(result, 'ok', `${fullName(res.data)} is registered and can check in now.`);
        people.load();
        health();
      } else if (res.error === errors.duplicate && res.data && res.data.person) {
        duplicateOf = res.data.person;
        const anyway = h('button', { class: 'btn btn-ghost', type: 'button', id: 'register-anyway', text: 'Register anyway' });
        anyway.addEventListener('click', () => {
          if (duplicateOf && photo && !saving) send(first, last, true);
        });
        result.replaceChildren(h('div', { class: 'notice notice-warn' },
          h('p', { text: `This face already belongs to ${fullName(duplicateOf)} (similarity ${Number(res.data.similarity).toFixed(3)}). Register anyway only if this is someone else.` }),
          anyway));
        updateSave();
      } else {
        // A quality refusal's message is its advice ("come closer to the camera", …).
        notice(result, 'error', res.message);
        updateSave();
      }
    }
    form.addEventListener('reset', () => {
      stopCamera();
      clearBox();
      notice(result, '', '');
    });
    webcam.addEventListener('click', startCamera);
    snap.addEventListener('click', takePhoto);
    fileInput.addEventListener('change', () => {
      const files = [...(fileInput.files || [])];
      fileInput.value = '';
      if (!files.length) return;
      // The first photo is shown and checked here (its face may be clicked); the others go with it.
      setPhoto(files[0], files[0].name || 'photo.jpg');
      extras = files.slice(1);
      showExtras();
    });
    return { stopCamera };
  })();

  // ---- attendance -------------------------------------------------------------------------
  const attendance = (() => {
    const dayInput = $('#day');
    const person = $('#filter-person');
    const from = $('#filter-from');
    const to = $('#filter-to');
    let chartDays = 14;

    function fillPeople() {
      const chosen = person.value;
      person.replaceChildren(h('option', { value: '' }, 'Everyone'),
        ...users.map((u) => h('option', { value: u.id }, fullName(u))));
      if (users.some((u) => String(u.id) === chosen)) person.value = chosen;
    }

    function setDay(ymd) {
      dayInput.value = ymd;
      from.value = ymd;
      to.value = ymd;
      refresh();
    }

    async function loadSummary() {
      const date = dayInput.value || todayUtc();
      $('#summary-title').textContent = `Present on ${day(date)}`;
      const res = await api('GET', `/attendance/summary?date=${date}`);
      const tbody = $('#summary-table tbody');
      if (!res.ok) {
        tbody.replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'notice-error' }, `Could not load: ${res.message}`)));
        return;
      }
      const rows = res.data || [];
      $('#summary-title').textContent = `Present on ${day(date)} — ${rows.length} ${rows.length === 1 ? 'person' : 'people'}`;
      $('#summary-table').hidden = rows.length === 0;
      $('#summary-empty').hidden = rows.length > 0;
      tbody.replaceChildren(...rows.map((r) => h('tr', {},
        h('td', { class: 'name', text: fullName(r) }),
        h('td', { class: 'time', title: r.first_seen, text: time(r.first_seen) }),
        h('td', { class: 'time', title: r.last_seen, text: time(r.last_seen) }),
        h('td', { class: 'num', text: r.count }))));
    }

    const LOG_PAGE = 500;

    function logQuery() {
      const q = new URLSearchParams();
      if (from.value) q.set('from', from.value);
      if (to.value) q.set('to', to.value || from.value);
      if (from.value && !to.value) q.set('to', from.value);
      if (!from.value && to.value) q.set('from', to.value);
      if (person.value) q.set('user_id', person.value);
      return q.toString();
    }

    async function loadLog() {
      const query = logQuery();
      $('#csv-link').href = `/attendance.csv${query ? `?${query}` : ''}`;
      // One page: a long log would make the page slow; the CSV link has everything.
      const page = new URLSearchParams(query);
      page.set('limit', String(LOG_PAGE + 1));
      const res = await api('GET', `/attendance?${page}`);
      const tbody = $('#log-table tbody');
      if (!res.ok) {
        tbody.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'notice-error' }, `Could not load: ${res.message}`)));
        return;
      }
      const rows = (res.data || []).slice(0, LOG_PAGE);
      $('#log-more').hidden = (res.data || []).length <= LOG_PAGE;
      $('#log-table').hidden = rows.length === 0;
      $('#log-empty').hidden = rows.length > 0;
      tbody.replaceChildren(...rows.map((r) => h('tr', {},
        h('td', { class: 'time', text: day(r.at.slice(0, 10), { weekday: undefined }) }),
        h('td', { class: 'time', title: r.at, text: time(r.at) }),
        h('td', { class: 'name', text: fullName(r) }),
        h('td', { class: 'num', text: typeof r.similarity === 'number' ? r.similarity.toFixed(3) : '' }),
        h('td', { text: r.kiosk || '—' }))));
    }

    async function loadChart() {
      const last = todayUtc();
      const first = addDays(last, -(chartDays - 1));
      const res = await api('GET', `/attendance/daily?from=${first}&to=${last}`);
      const wrap = $('#chart');
      if (!res.ok) {
        wrap.replaceChildren(h('p', { class: 'notice notice-error', text: `Could not load the chart: ${res.message}` }));
        return;
      }
      const byDay = new Map((res.data || []).map((d) => [d.date, d]));
      const days = [];
      for (let d = first; d <= last; d = addDays(d, 1)) {
        days.push(byDay.get(d) || { date: d, present: 0, events: 0 });
      }
      wrap.replaceChildren(chart(days, dayInput.value));
    }

    /** A bar chart of people present per day, as an SVG drawn here (no library). */
    function chart(days, selected) {
      const NS = 'http://www.w3.org/2000/svg';
      const s = (tag, attrs, ...children) => {
        const el = document.createElementNS(NS, tag);
        for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
        for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
        return el;
      };
      const W = 760;
      const H = 220;
      const pad = { left: 34, right: 8, top: 18, bottom: 30 };
      const plotW = W - pad.left - pad.right;
      const plotH = H - pad.top - pad.bottom;
      const max = Math.max(1, ...days.map((d) => d.present));
      const step = Math.max(1, Math.ceil(max / 4));
      const top = step * Math.ceil(max / step);
      const y = (v) => pad.top + plotH - (v / top) * plotH;
      const slot = plotW / days.length;
      const barW = Math.max(4, slot * 0.68);
      const total = days.reduce((n, d) => n + d.present, 0);
      const svg = s('svg', {
        class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
        'aria-label': `People present per day over the last ${days.length} days: ${total} attendances in total`,
      });
      for (let v = 0; v <= top; v += step) {
        svg.append(s('line', { class: 'grid', x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v) }));
        svg.append(s('text', { class: 'axis-label', x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, v));
      }
      const labelEvery = days.length > 20 ? 3 : days.length > 10 ? 2 : 1;
      days.forEach((d, i) => {
        const x = pad.left + i * slot + (slot - barW) / 2;
        const g = s('g', { class: 'bar-group', tabindex: 0, role: 'button',
          'aria-label': `${day(d.date)}: ${d.present} present, ${d.events} check-ins` });
        g.append(s('title', {}, `${day(d.date)}: ${d.present} present, ${d.events} check-ins`));
        g.append(s('rect', { class: 'bar-hit', x: pad.left + i * slot, y: pad.top, width: slot, height: plotH }));
        const barH = Math.max(d.present > 0 ? 2 : 0, (d.present / top) * plotH);
        g.append(s('rect', { class: `bar${d.date === selected ? ' selected' : ''}`, x, y: pad.top + plotH - barH, width: barW, height: barH, rx: 2 }));
        if (d.present > 0 && slot >= 18) {
          g.append(s('text', { class: 'value-label', x: x + barW / 2, y: pad.top + plotH - barH - 4, 'text-anchor': 'middle' }, d.present));
        }
        const pick = () => setDay(d.date);
        g.addEventListener('click', pick);
        g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
        svg.append(g);
        if ((days.length - 1 - i) % labelEvery === 0) {
          const date = new Date(`${d.date}T00:00:00Z`);
          const label = date.getUTCDate() === 1 || i < labelEvery
            ? date.toLocaleDateString([], { day: 'numeric', month: 'short', timeZone: 'UTC' })
            : String(date.getUTCDate());
          svg.append(s('text', { class: 'axis-label', x: pad.left + i * slot + slot / 2, y: H - 10, 'text-anchor': 'middle' }, label));
        }
      });
      return svg;
    }

    function refresh() {
      if (!dayInput.value) dayInput.value = todayUtc();
      loadSummary();
      loadLog();
      loadChart();
    }

    dayInput.addEventListener('change', () => setDay(dayInput.value || todayUtc()));
    $('#day-prev').addEventListener('click', () => setDay(addDays(dayInput.value || todayUtc(), -1)));
    $('#day-next').addEventListener('click', () => setDay(addDays(dayInput.value || todayUtc(), 1)));
    $('#day-today').addEventListener('click', () => setDay(todayUtc()));
    for (const input of [person, from, to]) input.addEventListener('change', loadLog);
    $('#attendance-refresh').addEventListener('click', refresh);
    for (const button of document.querySelectorAll('.segmented button')) {
      button.addEventListener('click', () => {
        chartDays = Number(button.dataset.days);
        document.querySelectorAll('.segmented button').forEach((b) => b.setAttribute('aria-pressed', String(b === button)));
        loadChart();
      });
    }
    /** Forget what a signed-out page should no longer show. */
    function clear() {
      for (const id of ['#summary-table tbody', '#log-table tbody', '#chart']) $(id).replaceChildren();
      fillPeople();
    }

    const today = todayUtc();
    dayInput.value = today;
    from.value = today;
    to.value = today;
    return { refresh, fillPeople, clear };
  })();

  // ---- keys -------------------------------------------------------------------------------
  const keys = (() => {
    const tbody = $('#keys-table tbody');
    const dialog = $('#revoke-dialog');
    let pending = null; // the key the revoke dialog is about

    async function load() {
      const res = await api('GET', '/keys');
      if (!res.ok) {
        notice($('#keys-notice'), 'error', `Could not load the keys: ${res.message}`);
        return;
      }
      notice($('#keys-notice'), '', '');
      const rows = res.data || [];
      $('#keys-table').hidden = rows.length === 0;
      $('#keys-empty').hidden = rows.length > 0;
      tbody.replaceChildren(...rows.map(row));
    }

    function row(k) {
      const revoked = Boolean(k.revoked_at);
      return h('tr', { 'data-key-id': k.id, class: revoked ? 'revoked' : null },
        h('td', { class: 'name', text: k.name }),
        h('td', {}, h('span', { class: 'pill', text: k.scope }),
          k.require_liveness ? h('span', { class: 'pill key-liveness', title: 'A single photo is recognised but checks nobody in', text: 'liveness required' }) : null),
        h('td', { class: 'time', title: k.created_at || '', text: dateTime(k.created_at) }),
        h('td', { class: 'time', title: k.last_used_at || '', text: dateTime(k.last_used_at) || 'never' }),
        h('td', { class: 'key-status', text: revoked ? `Revoked ${dateTime(k.revoked_at)}` : 'Active' }),
        h('td', { class: 'num' }, revoked ? null
          : h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', 'aria-label': `Revoke ${k.name}`, onclick: () => confirmRevoke(k) }, 'Revoke')));
    }

    function confirmRevoke(k) {
      pending = k;
      $('#revoke-title').textContent = `Revoke the key “${k.name}”?`;
      dialog.showModal();
    }

    dialog.addEventListener('close', async () => {
      const k = pending;
      pending = null;
      if (dialog.returnValue !== 'revoke' || !k) return;
      const res = await api('DELETE', `/keys/${encodeURIComponent(k.id)}`);
      if (res.ok) notice($('#keys-notice'), 'ok', `The key “${k.name}” is revoked: whatever used it is refused from now on.`);
      else notice($('#keys-notice'), 'error', `Could not revoke “${k.name}”: ${res.message}`);
      load();
    });

    /** POST /keys; on success shows the secret once in `result` (made by `show`) and reloads. */
    async function create(form, name, scope, requireLiveness, result, show) {
      const submit = form.querySelector('button[type=submit]');
      if (!name) {
        notice(result, 'error', 'Enter a name, so the key can be told apart from the others.');
        form.querySelector('input').focus();
        return;
      }
      submit.disabled = true;
      const res = await api('POST', '/keys', { name, scope, require_liveness: requireLiveness });
      submit.disabled = false;
      if (!res.ok) {
        notice(result, 'error', `Could not create the key: ${res.message}`);
        return;
      }
      form.querySelector('input').value = '';
      form.querySelector('input[type=checkbox]').checked = false;
      result.replaceChildren(show(res.data));
      load();
    }

    $('#pair-form').addEventListener('submit', (e) => {
      e.preventDefault();
      create(e.target, $('#pair-name').value.trim(), 'verify', $('#pair-liveness').checked, $('#pair-result'), (k) => {
        const link = `${window.location.origin}/#pair=${k.key}`;
        return RC.secret(`Pairing link for ${k.name}`, link,
          `Open this link once in the browser of the kiosk “${k.name}”: it keeps the key and forgets the link. `
          + 'It is shown only this once, and anyone who has it can check people in as this kiosk.');
      });
    });
    $('#key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      create(e.target, $('#key-name').value.trim(), $('#key-scope').value, $('#key-liveness').checked, $('#key-result'), (k) => RC.secret(
        `Key ${k.name}`, k.key,
        `Copy this ${k.scope} key now: it is shown only once and cannot be recovered. Keep it like a password; `
        + 'clients send it as “Authorization: Bearer KEY”.'));
    });
    $('#keys-refresh').addEventListener('click', load);

    function clear() {
      tbody.replaceChildren();
      for (const id of ['#pair-result', '#key-result', '#keys-notice']) $(id).replaceChildren();
    }
    return { load, clear };
  })();

  // ---- audit log --------------------------------------------------------------------------
  const audit = (() => {
    const PAGE = 100;
    const tbody = $('#audit-table tbody');
    let oldest = null; // the id of the last row shown, for "Older entries"

    async function load(more) {
      const query = more && oldest !== null ? `?limit=${PAGE}&before=${oldest}` : `?limit=${PAGE}`;
      const res = await api('GET', `/audit${query}`);
      if (!res.ok) {
        notice($('#audit-notice'), 'error', `Could not load the audit log: ${res.message}`);
        return;
      }
      notice($('#audit-notice'), '', '');
      const rows = res.data || [];
      if (more) tbody.append(...rows.map(row));
      else tbody.replaceChildren(...rows.map(row));
      if (rows.length) oldest = rows[rows.length - 1].id;
      const shown = tbody.children.length;
      $('#audit-table').hidden = shown === 0;
      $('#audit-empty').hidden = shown > 0;
      $('#audit-more').hidden = rows.length < PAGE;
    }

    function row(e) {
      return h('tr', { 'data-audit-id': e.id },
        h('td', { class: 'time', title: e.at, text: dateTime(e.at) }),
        h('td', { class: 'name', text: e.actor }),
        h('td', {}, h('span', { class: 'pill', text: e.action })),
        h('td', { text: e.target || '' }),
        h('td', { text: e.address || 'command line' }),
        h('td', { class: 'muted', text: e.detail || '' }));
    }

    $('#audit-refresh').addEventListener('click', () => load(false));
    $('#audit-more').addEventListener('click', () => load(true));

    function clear() {
      tbody.replaceChildren();
      oldest = null;
      $('#audit-notice').replaceChildren();
    }
    return { load: () => load(false), clear };
  })();

  // ---- settings (admins only) ---------------------------------------------------------------
  const settings = (() => {
    const form = $('#settings-form');
    const kioskAdds = $('#setting-kiosk-adds');
    const maxRefs = $('#setting-max-refs');
    const say = (kind, text) => notice($('#settings-notice'), kind, text);

    function show(s) {
      kioskAdds.checked = Boolean(s.kiosk_adds_references);
      maxRefs.value = String(s.max_references_per_person);
    }

    async function load() {
      const res = await api('GET', '/settings');
      if (res.ok) show(res.data);
      else say('error', `Could not load the settings: ${res.message}`);
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const max = Number(maxRefs.value);
      if (!Number.isInteger(max) || max < 1 || max > 20) {
        say('error', 'The number of photos per person is a whole number from 1 to 20.');
        maxRefs.focus();
        return;
      }
      const res = await api('PUT', '/settings', { kiosk_adds_references: kioskAdds.checked, max_references_per_person: max });
      if (res.ok) {
        show(res.data);
        say('ok', 'The settings are saved.');
      } else {
        say('error', `Could not save the settings: ${res.message}`);
      }
    });

    function clear() {
      say('', '');
    }
    return { load, clear };
  })();

  // ---- signing in -------------------------------------------------------------------------
  const isAdmin = () => Boolean(me && me.role === 'admin');

  const auth = (() => {
    const screen = $('#auth-screen');
    const loginForm = $('#login-form');
    const setupForm = $('#setup-form');
    let setupToken = null;

    /** The server logs `/admin#setup=TOKEN` on a first start: take the token, drop it from the URL. */
    function takeSetupToken() {
      const hash = window.location.hash;
      if (!hash.startsWith('#setup=')) return;
      setupToken = decodeURIComponent(hash.slice('#setup='.length));
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
    }

    function showScreen(which) {
      $('#app').hidden = true;
      screen.hidden = false;
      $('#auth-loading').hidden = which !== 'loading';
      loginForm.hidden = which !== 'login';
      setupForm.hidden = which !== 'setup';
      const first = { login: '#login-username', setup: '#setup-username' }[which];
      if (first) $(first).focus();
    }

    function showLogin(kind, text) {
      notice($('#login-notice'), kind, text);
      $('#login-password').value = '';
      showScreen('login');
    }

    /** Into the admin sections as `account` (`{ name, role }`). */
    function signedIn(account) {
      me = account;
      screen.hidden = true;
      $('#app').hidden = false;
      TABS = isAdmin() ? ALL_TABS : ALL_TABS.filter((t) => !ADMIN_TABS.includes(t));
      for (const el of document.querySelectorAll('[data-admin]')) el.hidden = !isAdmin();
      $('#whoami-name').textContent = me.name;
      $('#whoami-role').textContent = me.role;
      health();
      const first = window.location.hash.slice(1);
      if (first !== 'people') people.load(); // the attendance filters need the list of people too
      showTab(first);
    }

    /** Back to the login screen, with nothing of the last account's data left on the page. */
    function signedOut(text, kind) {
      me = null;
      signOuts += 1;
      register.stopCamera();
      for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close('cancel');
      people.clear();
      attendance.clear();
      keys.clear();
      audit.clear();
      settings.clear();
      showLogin(kind || 'warn', text);
    }

    async function start() {
      takeSetupToken();
      showScreen('loading');
      const res = await RC.api('GET', '/me');
      if (res.ok && res.data && res.data.kind === 'account') {
        signedIn({ name: res.data.name, role: res.data.role });
      } else if (!res.ok && res.status === 0) {
        showLogin('error', res.message);
      } else if (setupToken) {
        showScreen('setup');
      } else {
        showLogin('', '');
      }
    }

    loginForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const username = $('#login-username').value.trim();
      const password = $('#login-password').value;
      if (!username || !password) {
        notice($('#login-notice'), 'error', 'Enter your username and password.');
        $(username ? '#login-password' : '#login-username').focus();
        return;
      }
      const submit = $('#login-submit');
      submit.disabled = true;
      submit.textContent = 'Logging in…';
      const res = await RC.api('POST', '/login', { username, password });
      submit.disabled = false;
      submit.textContent = 'Log in';
      $('#login-password').value = '';
      if (res.ok) {
        notice($('#login-notice'), '', '');
        signedIn({ name: res.data.username, role: res.data.role });
      } else if (res.error === errors.tooManyAttempts) {
        const when = res.retryAfter ? RC.inWords(res.retryAfter) : 'later';
        notice($('#login-notice'), 'error', `Too many failed attempts. Try again ${when}.`);
      } else if (res.error === errors.unauthorized) {
        notice($('#login-notice'), 'error', 'Wrong username or password.');
        $('#login-password').focus();
      } else {
        notice($('#login-notice'), 'error', `Could not log in: ${res.message}`);
      }
    });

    setupForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const username = $('#setup-username').value.trim();
      const password = $('#setup-password').value;
      const again = $('#setup-password2').value;
      const say = (text) => notice($('#setup-notice'), 'error', text);
      if (!username) {
        say('Choose a username.');
        $('#setup-username').focus();
        return;
      }
      if (password.length < 10) {
        say('The password needs at least 10 characters.');
        $('#setup-password').focus();
        return;
      }
      if (password !== again) {
        say('The two passwords are not the same. Type them again.');
        $('#setup-password2').value = '';
        $('#setup-password').focus();
        return;
      }
      const submit = $('#setup-submit');
      submit.disabled = true;
      const res = await RC.api('POST', '/setup', { token: setupToken, username, password });
      submit.disabled = false;
      if (!res.ok) {
        say(`Could not create the account: ${res.message}`);
        return;
      }
      setupToken = null;
      for (const id of ['#setup-password', '#setup-password2']) $(id).value = '';
      notice($('#setup-notice'), '', '');
      // Setup logs the new administrator in; /me says so (and with which role).
      const who = await RC.api('GET', '/me');
      if (who.ok && who.data && who.data.kind === 'account') signedIn({ name: who.data.name, role: who.data.role });
      else showLogin('ok', `The account ${username} was created. Log in with it.`);
    });
    $('#setup-login').addEventListener('click', () => showLogin('', ''));

    $('#logout').addEventListener('click', async () => {
      const res = await RC.api('POST', '/logout');
      signedOut(res.ok ? 'You are logged out.' : `Logged out on this page (the server answered: ${res.message}).`, 'ok');
    });

    return { start, signedOut };
  })();

  // ---- start ------------------------------------------------------------------------------
  setInterval(() => { if (me) health(); }, 30000);
  auth.start();
})();
