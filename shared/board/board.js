// The on-call board: every patient with current grades, last vitals and open pages; a patient view with the
// timeline; acknowledgements. Plain JavaScript served by crs serve; data from its JSON API, live over SSE.
// Every value is put in the page as text (textContent), never as HTML.
(function () {
  'use strict';

  var main = document.getElementById('main');
  var statusEl = document.getElementById('status');
  var announcer = document.getElementById('announcer');
  var dialog = document.getElementById('ack-dialog');
  var ackForm = document.getElementById('ack-form');
  var ackName = document.getElementById('ack-name');
  var ackError = document.getElementById('ack-error');
  var ackSummary = document.getElementById('ack-summary');
  var ackConfirm = document.getElementById('ack-confirm');

  var STALE_MS = 30 * 60 * 1000;
  var NAME_KEY = 'crs-board-name';
  var state = {
    serverOffset: 0,
    live: false,
    lastData: null,
    authFailed: false,
    view: null, // {kind: 'list'} or {kind: 'patient', id}
    hours: 72,
    flash: {},
    ackPage: null,
    returnFocus: null
  };

  // ------------------------------------------------------------------------------------------------ formatting
  var fmtTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  var fmtDateTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  var fmtDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  var fmtClock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  function now() { return Date.now() + state.serverOffset; }
  function sameDay(a, b) { return new Date(a).toDateString() === new Date(b).toDateString(); }
  function when(iso) {
    var ms = Date.parse(iso);
    return sameDay(ms, now()) ? fmtTime.format(ms) : fmtDateTime.format(ms);
  }
  function ago(iso) {
    var s = Math.round((now() - Date.parse(iso)) / 1000);
    if (s < 60) return 'just now';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min ago';
    return Math.floor(h / 24) + ' days ago';
  }
  var chartFmt = {
    time: function (ms) { return fmtTime.format(ms); },
    dateTime: function (ms) { return fmtDateTime.format(ms); },
    day: function (ms) { return fmtDay.format(ms); }
  };
  var TEAM = { hematology: 'hematology', icu: 'ICU', neurology: 'neurology', radiology: 'radiology' };
  function teams(list) { return list.map(function (t) { return TEAM[t] || t; }).join(', '); }
  function condName(c) { return c === 'crs' ? 'CRS' : 'ICANS'; }
  function therapyName(t) { return t === 'car-t' ? 'CAR-T' : t === 'bispecific' ? 'bispecific' : t; }
  function where(p) { return p.bed ? 'Bed ' + p.bed : 'No bed'; }

  // ------------------------------------------------------------------------------------------------------- DOM
  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'text') e.textContent = v;
        else if (k === 'class') e.className = v;
        else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }

  function gradeBadge(condition, grade) {
    return h('span', { class: 'grade g' + grade, text: condName(condition) + ' ' + grade, title: condName(condition) + ' grade ' + grade + ' (provisional)' });
  }

  function ageEl(iso, prefix) {
    return h('span', { class: 'age', 'data-age': iso, 'data-prefix': prefix || '' }, [(prefix || '') + when(iso) + ' (' + ago(iso) + ')']);
  }
  function tickAges() {
    var list = document.querySelectorAll('[data-age]');
    for (var i = 0; i < list.length; i++) {
      var e = list[i];
      var iso = e.getAttribute('data-age');
      var stale = now() - Date.parse(iso) > STALE_MS;
      e.textContent = e.getAttribute('data-prefix') + when(iso) + ' (' + ago(iso) + (stale && e.hasAttribute('data-stale') ? ', stale' : '') + ')';
      e.classList.toggle('stale', stale && e.hasAttribute('data-stale'));
    }
  }

  function announce(text) {
    announcer.textContent = '';
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function setStatus() {
    var data = state.lastData;
    var asOf = data ? ' · data as of ' + fmtClock.format(Date.parse(data.serverTime)) : '';
    if (state.authFailed) {
      statusEl.textContent = 'No access key';
      statusEl.className = 'status down';
    } else if (state.live) {
      statusEl.textContent = 'Live' + asOf;
      statusEl.className = 'status live';
    } else {
      statusEl.textContent = 'Reconnecting…' + asOf;
      statusEl.className = 'status down';
    }
  }

  // ------------------------------------------------------------------------------------------------------- API
  function api(path, options) {
    return fetch(path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options || {})).then(function (res) {
      if (res.status === 401) {
        state.authFailed = true;
        setStatus();
        renderNoKey();
        throw new Error('unauthorised');
      }
      state.authFailed = false;
      return res.json().then(function (body) { return { status: res.status, body: body }; });
    });
  }

  function renderNoKey() {
    main.textContent = '';
    main.appendChild(h('div', { class: 'notice' }, [
      h('h2', { text: 'This board needs its access key' }),
      h('p', { text: 'Open the link that crs serve printed when it started (it looks like http://127.0.0.1:8080/?key=…). ' +
        'The key is kept in this browser for the session, never in the address bar.' })
    ]));
  }

  // -------------------------------------------------------------------------------------------------- patients
  function vitalsList(p) {
    var v = p.vitals;
    var items = [];
    function item(label, value, cls) { items.push(h('li', { class: cls }, [h('abbr', { title: label.title, text: label.short }), ' ' + value])); }
    if (v.temperatureC) item({ short: 'T', title: 'Temperature' }, v.temperatureC.value + ' °C', v.temperatureC.value >= p.limits.feverC ? 'high' : null);
    if (v.heartRate) item({ short: 'HR', title: 'Heart rate' }, v.heartRate.value + '/min');
    if (v.systolicBP || v.meanArterialPressure) {
      var sys = v.systolicBP ? v.systolicBP.value : null;
      var mapv = v.meanArterialPressure ? v.meanArterialPressure.value : null;
      var text = (sys !== null ? sys : '–') + '/' + (v.diastolicBP ? v.diastolicBP.value : '–') + (mapv !== null ? ' (MAP ' + mapv + ')' : '') + ' mmHg';
      var low = (sys !== null && sys < p.limits.systolicBelow) || (mapv !== null && mapv < p.limits.mapBelow);
      item({ short: 'BP', title: 'Blood pressure' }, text, low ? 'low' : null);
    }
    if (v.spo2) item({ short: 'SpO2', title: 'Oxygen saturation' }, v.spo2.value + ' %');
    if (v.respiratoryRate) item({ short: 'RR', title: 'Respiratory rate' }, v.respiratoryRate.value + '/min');
    if (p.oxygen) item({ short: 'O2', title: 'Oxygen support' }, window.CrsChart.o2Text({ device: p.oxygen.value, flowLpm: p.oxygen.flowLpm === null ? undefined : p.oxygen.flowLpm, fio2: p.oxygen.fio2 === null ? undefined : p.oxygen.fio2, forComfort: p.oxygen.forComfort }));
    if (p.vasopressors && p.vasopressors.value.length > 0) item({ short: 'Pressors', title: 'Vasopressors infusing' }, window.CrsChart.pressorText(p.vasopressors.value));
    if (p.neuro && p.neuro.iceScore !== null) item({ short: 'ICE', title: 'ICE score (0-10)' }, p.neuro.iceScore + '/10, ' + p.neuro.value);
    return h('ul', { class: 'vitals', 'aria-label': 'Latest observations' }, items);
  }

  function pageItem(pg, p) {
    var title = condName(pg.condition) + ' grade ' + pg.toGrade + ' (' + pg.kind + ' from ' + pg.fromGrade + ')';
    var li = h('li', { class: 'page ' + pg.kind + (pg.acknowledgedAt ? ' acknowledged' : ''), 'data-page': pg.notificationId }, [
      h('div', { class: 'head' }, [
        h('span', { class: 'title', text: title }),
        h('span', { class: 'teams', text: 'Paged: ' + teams(pg.teams) })
      ]),
      h('div', { class: 'when', text: 'Grade changed ' + when(pg.at) + ' (patient time) · sent ' + when(pg.triggeredAt) +
        (pg.deliveredTo.length ? ' via ' + pg.deliveredTo.join(', ') : ' · not yet delivered') }),
      pg.reasons.length ? h('div', { class: 'label', text: 'Why' }) : null,
      pg.reasons.length ? h('ul', {}, pg.reasons.map(function (r) { return h('li', { text: r }); })) : null,
      pg.actions.length ? h('div', { class: 'label', text: 'Next steps (local protocol, decision support)' }) : null,
      pg.actions.length ? h('ul', {}, pg.actions.map(function (a) { return h('li', { text: a }); })) : null
    ]);
    if (pg.acknowledgedAt) {
      li.appendChild(h('p', { class: 'ackinfo', text: 'Acknowledged by ' + pg.acknowledgedBy + ' at ' + when(pg.acknowledgedAt) +
        (pg.acknowledgedVia ? ' (with a later page)' : '') }));
    } else {
      li.appendChild(h('button', {
        type: 'button', class: 'ack primary', 'data-key': 'ack:' + pg.notificationId,
        'aria-label': 'Acknowledge ' + title + ' for ' + where(p).toLowerCase() + ', patient ' + p.patientId,
        onclick: function (e) { openAck(pg, p, e.currentTarget); }
      }, ['Acknowledge']));
    }
    return li;
  }

  function openPages(p) {
    if (p.openPages.length === 0) return h('p', { class: 'pages', text: 'No open pages.' });
    var current = p.openPages.filter(function (pg) { return !pg.supersededBy; });
    var older = p.openPages.filter(function (pg) { return pg.supersededBy; });
    var section = h('section', { class: 'pages', 'aria-label': 'Open pages' }, [
      h('h4', { text: 'Open pages (' + p.openPages.length + ')' }),
      h('ul', { class: 'list' }, current.map(function (pg) { return pageItem(pg, p); }))
    ]);
    if (older.length) {
      section.appendChild(h('details', {}, [
        h('summary', { text: older.length + ' older open page' + (older.length > 1 ? 's' : '') + ', superseded (acknowledged with the newer one)' }),
        h('ul', { class: 'list' }, older.map(function (pg) { return pageItem(pg, p); }))
      ]));
    }
    return section;
  }

  function card(p, detail) {
    var sev = Math.max(p.crs.grade, p.icans.grade);
    var name = where(p) + ' · patient ' + p.patientId;
    var meta = [p.ward ? 'ward ' + p.ward : null, p.therapy ? therapyName(p.therapy) + (p.product ? ' ' + p.product : '') : null,
      p.dayPostInfusion !== null ? 'day +' + p.dayPostInfusion + ' since infusion' : 'not enrolled'].filter(Boolean).join(' · ');
    var reasons = [];
    if (p.crs.grade > 0) reasons.push('CRS: ' + p.crs.reasons.join('; '));
    if (p.icans.grade > 0) reasons.push('ICANS: ' + p.icans.reasons.join('; '));
    var lastVitals = p.lastVitalsAt ? ageEl(p.lastVitalsAt, 'Last vitals ') : h('span', { class: 'age', text: 'No vitals yet' });
    if (p.lastVitalsAt) lastVitals.setAttribute('data-stale', '');
    var article = h('article', { class: 'card sev-' + sev + (state.flash[p.patientId] ? ' flash' : ''), 'aria-label': name }, [
      h(detail ? 'h2' : 'h3', detail ? { tabindex: '-1', 'data-key': 'heading' } : {}, [detail ? name : h('a', { href: '#/patient/' + encodeURIComponent(p.patientId), 'data-key': 'open:' + p.patientId, text: name })]),
      h('p', { class: 'meta', text: meta }),
      h('div', { class: 'grades' }, [gradeBadge('crs', p.crs.grade), gradeBadge('icans', p.icans.grade)]),
      reasons.length ? h('p', { class: 'reasons', text: reasons.join(' — ') }) : null,
      vitalsList(p),
      h('p', {}, [lastVitals, h('span', { class: 'age', text: ' · grades as of ' + when(p.clock) + ' (' + p.scheme + ')' })]),
      openPages(p)
    ]);
    return article;
  }

  // ---------------------------------------------------------------------------------------------------- views
  function keepFocus(render) {
    var active = document.activeElement;
    var key = active && active.getAttribute && active.getAttribute('data-key');
    render();
    if (key) {
      var again = main.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again && again !== document.activeElement) again.focus({ preventScroll: true });
    }
  }

  var listCache = {};
  function renderList(data) {
    var ul = document.getElementById('patients');
    if (!ul) {
      main.textContent = '';
      listCache = {};
      main.appendChild(h('div', { class: 'toolbar' }, [h('h2', { text: 'Patients' }), h('span', { class: 'counts', id: 'counts' })]));
      ul = h('ul', { class: 'patients', id: 'patients' });
      main.appendChild(ul);
    }
    var open = data.patients.reduce(function (n, p) { return n + p.openPages.length; }, 0);
    document.getElementById('counts').textContent = data.patients.length + ' patient' + (data.patients.length === 1 ? '' : 's') +
      ' · ' + open + ' open page' + (open === 1 ? '' : 's') + ' · sickest first';
    keepFocus(function () {
      var seen = {};
      data.patients.forEach(function (p) {
        var sig = JSON.stringify(p) + (state.flash[p.patientId] ? 'f' : '');
        var cached = listCache[p.patientId];
        if (!cached || cached.sig !== sig) {
          var li = h('li', { 'data-patient': p.patientId }, [card(p, false)]);
          if (cached) ul.replaceChild(li, cached.li);
          cached = listCache[p.patientId] = { sig: sig, li: li };
        }
        ul.appendChild(cached.li); // keeps the server's order (sickest first)
        seen[p.patientId] = true;
      });
      Object.keys(listCache).forEach(function (id) {
        if (!seen[id]) { ul.removeChild(listCache[id].li); delete listCache[id]; }
      });
      if (data.patients.length === 0 && !document.getElementById('empty')) {
        ul.appendChild(h('li', { id: 'empty', class: 'notice', text: 'No patients yet. Devices POST to /v1/messages; try crs simulate.' }));
      } else if (data.patients.length > 0 && document.getElementById('empty')) {
        ul.removeChild(document.getElementById('empty'));
      }
    });
  }

  var RANGES = [[6, '6 h'], [24, '24 h'], [72, '72 h'], [168, '7 days']];
  function renderPatientSkeleton(id) {
    main.textContent = '';
    var rangeButtons = RANGES.map(function (r) {
      return h('button', { type: 'button', 'data-key': 'range:' + r[0], 'aria-pressed': String(state.hours === r[0]),
        onclick: function () { state.hours = r[0]; refresh(); } }, [r[1]]);
    });
    main.appendChild(h('div', { class: 'detail' }, [
      h('a', { class: 'back', href: '#/', 'data-key': 'back' }, ['← All patients']),
      h('div', { id: 'd-card' }),
      h('section', { class: 'section', 'aria-labelledby': 'tl-title' }, [
        h('h3', { id: 'tl-title', text: 'Timeline' }),
        h('div', { class: 'range', role: 'group', 'aria-label': 'Time range (patient time)' }, rangeButtons),
        h('div', { class: 'chart', id: 'chart' }),
        h('ul', { class: 'legend', 'aria-hidden': 'true' }, [
          legend('temperature', window.CrsChart.COLORS.temp), legend('systolic', window.CrsChart.COLORS.sys),
          legend('diastolic', window.CrsChart.COLORS.dia), legend('MAP (dashed)', window.CrsChart.COLORS.map),
          legend('SpO2', window.CrsChart.COLORS.spo2),
          h('li', { text: 'Meds: T tocilizumab, D dexamethasone, M methylprednisolone, H hydrocortisone, A acetaminophen, I ibuprofen, S siltuximab, K anakinra' }),
          h('li', { text: 'Dashed red lines: fever and hypotension limits' })
        ]),
        h('details', {}, [h('summary', { text: 'Timeline as a table' }), h('div', { class: 'table-wrap', id: 'd-table' })])
      ]),
      h('section', { class: 'section', 'aria-labelledby': 'pg-title' }, [h('h3', { id: 'pg-title', text: 'All pages' }), h('div', { id: 'd-pages' })])
    ]));
    main.setAttribute('data-patient', id);
  }
  function legend(text, color) {
    var sw = h('span', { class: 'sw' });
    sw.style.borderTopColor = color;
    return h('li', {}, [sw, text]);
  }

  function renderPatient(data) {
    var p = data.patient;
    if (main.getAttribute('data-patient') !== p.patientId || !document.getElementById('d-card')) renderPatientSkeleton(p.patientId);
    keepFocus(function () {
      var c = document.getElementById('d-card');
      c.textContent = '';
      c.appendChild(card(p, true));
      var buttons = main.querySelectorAll('.range button');
      for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute('aria-pressed', String(buttons[i].getAttribute('data-key') === 'range:' + state.hours));
      document.getElementById('tl-title').textContent = 'Timeline: last ' + (state.hours >= 168 ? '7 days' : state.hours + ' h') + ' of patient time';
      window.CrsChart.render(document.getElementById('chart'), data.timeline, chartFmt);
      renderTable(data.timeline);
      renderAllPages(data.pages, p);
    });
    document.title = where(p) + ' · CRS ' + p.crs.grade + ' · ICANS ' + p.icans.grade + ' · on-call board';
  }

  function renderTable(tl) {
    var wrap = document.getElementById('d-table');
    wrap.textContent = '';
    var rows = tl.points.slice().reverse().slice(0, 500);
    var head = ['Observed', 'Temp °C', 'BP (MAP)', 'HR', 'SpO2', 'Oxygen', 'Pressors', 'Meds', 'ICE', 'CRS', 'ICANS'];
    var table = h('table', {}, [
      h('caption', { class: 'sr-only', text: 'Observations, newest first' }),
      h('thead', {}, [h('tr', {}, head.map(function (t) { return h('th', { scope: 'col', text: t }); }))]),
      h('tbody', {}, rows.map(function (r) {
        var v = r.vitals || {};
        var bp = v.systolicBP !== undefined || v.meanArterialPressure !== undefined
          ? (v.systolicBP !== undefined ? v.systolicBP : '–') + '/' + (v.diastolicBP !== undefined ? v.diastolicBP : '–') +
            (v.meanArterialPressure !== undefined ? ' (' + v.meanArterialPressure + ')' : '') : '';
        return h('tr', {}, [
          h('td', { text: when(r.t) }), h('td', { text: v.temperatureC !== undefined ? String(v.temperatureC) : '' }), h('td', { text: bp }),
          h('td', { text: v.heartRate !== undefined ? String(v.heartRate) : '' }), h('td', { text: v.spo2 !== undefined ? String(v.spo2) : '' }),
          h('td', { text: r.oxygen ? window.CrsChart.o2Text(r.oxygen) : '' }),
          h('td', { text: r.vasopressors ? (r.vasopressors.length ? window.CrsChart.pressorText(r.vasopressors) : 'stopped') : '' }),
          h('td', { text: (r.medications || []).map(function (m) { return m.drug + (m.doseMg !== undefined ? ' ' + m.doseMg + ' mg' : ''); }).join(', ') }),
          h('td', { text: r.neuro && r.neuro.iceScore !== undefined ? String(r.neuro.iceScore) : '' }),
          h('td', { text: String(r.crs) }), h('td', { text: String(r.icans) })
        ]);
      }))
    ]);
    wrap.appendChild(table);
    if (tl.points.length > rows.length) wrap.appendChild(h('p', { text: 'Showing the newest ' + rows.length + ' of ' + tl.points.length + '.' }));
  }

  function renderAllPages(pages, p) {
    var wrap = document.getElementById('d-pages');
    wrap.textContent = '';
    if (pages.length === 0) {
      wrap.appendChild(h('p', { text: 'No pages for this patient.' }));
      return;
    }
    wrap.appendChild(h('ul', { class: 'list' }, pages.map(function (pg) { return pageItem(pg, p); })));
  }

  // ------------------------------------------------------------------------------------------ acknowledgement
  function openAck(pg, p, button) {
    state.ackPage = pg;
    state.returnFocus = button ? button.getAttribute('data-key') : null;
    ackSummary.textContent = condName(pg.condition) + ' grade ' + pg.toGrade + ' (' + pg.kind + ') for ' + where(p).toLowerCase() +
      ', patient ' + p.patientId + '. Paged: ' + teams(pg.teams) + '.';
    ackError.textContent = '';
    ackName.value = localStorage.getItem(NAME_KEY) || '';
    ackConfirm.disabled = false;
    dialog.showModal();
    ackName.focus();
  }
  function closeAck() {
    if (dialog.open) dialog.close();
  }
  dialog.addEventListener('close', function () {
    var key = state.returnFocus;
    state.ackPage = null;
    if (key) {
      var target = main.querySelector('[data-key="' + CSS.escape(key) + '"]') || main.querySelector('h2, h3 a') || main;
      target.focus();
    }
  });
  document.getElementById('ack-cancel').addEventListener('click', closeAck);
  ackForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var pg = state.ackPage;
    var by = ackName.value.trim();
    if (!pg) return closeAck();
    if (!by) { ackError.textContent = 'Type your name: it is recorded with the acknowledgement.'; ackName.focus(); return; }
    ackConfirm.disabled = true;
    api('/api/pages/' + encodeURIComponent(pg.notificationId) + '/ack', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: by })
    }).then(function (r) {
      ackConfirm.disabled = false;
      if (r.status === 200) {
        localStorage.setItem(NAME_KEY, by);
        announce('Acknowledged by ' + r.body.page.acknowledgedBy + ' at ' + when(r.body.page.acknowledgedAt) + '.');
        // The button is gone once acknowledged: focus goes back to the patient's heading.
        state.returnFocus = route().kind === 'patient' ? 'heading' : 'open:' + pg.patientId;
        closeAck();
        refresh();
      } else if (r.status === 409) {
        ackError.textContent = 'Already acknowledged by ' + r.body.page.acknowledgedBy + ' at ' + when(r.body.page.acknowledgedAt) + '.';
        refresh();
      } else {
        ackError.textContent = (r.body.errors && r.body.errors.join('; ')) || r.body.error || 'Not acknowledged (HTTP ' + r.status + ').';
      }
    }).catch(function () {
      ackConfirm.disabled = false;
      if (!state.authFailed) ackError.textContent = 'The server did not answer; nothing was recorded. Try again.';
    });
  });

  // ----------------------------------------------------------------------------------------- routing and data
  function route() {
    var m = location.hash.match(/^#\/patient\/(.+)$/);
    return m ? { kind: 'patient', id: decodeURIComponent(m[1]) } : { kind: 'list' };
  }

  var inFlight = false, again = false, timer = null;
  function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    var view = state.view = route();
    var path = view.kind === 'patient' ? '/api/patients/' + encodeURIComponent(view.id) + '?hours=' + state.hours : '/api/patients';
    api(path).then(function (r) {
      if (view.kind !== route().kind || (view.kind === 'patient' && view.id !== route().id)) return; // navigated away meanwhile
      state.serverOffset = Date.parse(r.body.serverTime) - Date.now();
      state.lastData = r.body;
      if (r.status === 404) {
        main.textContent = '';
        main.appendChild(h('div', { class: 'notice' }, [h('p', { text: 'No patient ' + view.id + '.' }), h('a', { href: '#/', text: '← All patients' })]));
      } else if (view.kind === 'patient') renderPatient(r.body);
      else renderList(r.body);
      setStatus();
    }).catch(function () { setStatus(); }).then(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }
  function scheduleRefresh(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay === undefined ? 250 : delay);
  }

  window.addEventListener('hashchange', function () {
    main.removeAttribute('data-patient');
    var r = route();
    if (r.kind === 'list') { document.title = 'CRS / ICANS on-call board'; main.textContent = ''; }
    refresh();
    main.focus({ preventScroll: false });
  });

  var source = null;
  function connect() {
    source = new EventSource('/api/events');
    source.onopen = function () { state.live = true; setStatus(); scheduleRefresh(0); };
    source.onerror = function () {
      state.live = false;
      setStatus();
      if (source.readyState === EventSource.CLOSED) { // refused (no key, or full): try again later
        source = null;
        setTimeout(function () { refresh(); connect(); }, 5000);
      }
    };
    source.addEventListener('patients', function () { scheduleRefresh(); });
    source.addEventListener('ack', function () { scheduleRefresh(); });
    source.addEventListener('page', function (e) {
      var d = JSON.parse(e.data);
      state.flash[d.patientId] = true;
      setTimeout(function () { delete state.flash[d.patientId]; scheduleRefresh(); }, 4000);
      announce('New page: ' + condName(d.condition) + ' grade ' + d.toGrade + ' ' + d.kind + ' for ' + (d.bed ? 'bed ' + d.bed : 'patient') + ', patient ' + d.patientId + '.');
      scheduleRefresh(100);
    });
  }

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (route().kind === 'patient') refresh(); }, 200);
  });
  setInterval(tickAges, 15000);
  setInterval(function () { if (!state.live) refresh(); }, 30000); // in case the event stream is down
  refresh();
  connect();
})();
