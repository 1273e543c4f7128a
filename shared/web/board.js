// The on-call board: every patient with current grades, last vitals and what is paged (per team: who was paged,
// who acknowledged, what is pending), technical alerts and silences; a patient view with the timeline, every page
// and the audit trail; acknowledgements and silences; the end of a patient's monitoring (a discharge) and its
// resumption (a re-admission). Plain JavaScript served by crs serve; data from its JSON API,
// live over SSE. Every value is put in the page as text (textContent), never as HTML.
(function () {
  // Opened at a proxy's prefix without its trailing slash (/wards): the address takes the board's base (<base href>,
  // --public-url's path), so that its links (#/patient/...) stay on this page instead of loading it again.
  if (document.querySelector('base')) {
    var base = new URL(document.baseURI);
    if (location.pathname !== base.pathname) history.replaceState(null, '', base.pathname + location.hash);
  }
  var main = document.getElementById('main');
  var statusEl = document.getElementById('status');
  // The state (Live, Reconnecting…, Server error) is a live region, said when it changes; the time of the data
  // shown is beside it, out of it: read on demand, not announced at every update.
  var statusState = document.getElementById('status-state');
  var statusAsOf = document.getElementById('status-as-of');
  var announcer = document.getElementById('announcer');
  var deliveryEl = document.getElementById('delivery-alerts');
  var lostEl = document.getElementById('server-lost');
  var dialog = /** @type {HTMLDialogElement} */ (document.getElementById('ack-dialog'));
  var ackForm = /** @type {HTMLFormElement} */ (document.getElementById('ack-form'));
  var ackName = /** @type {HTMLInputElement} */ (document.getElementById('ack-name'));
  var ackError = document.getElementById('ack-error');
  var ackSummary = document.getElementById('ack-summary');
  var ackConfirm = /** @type {HTMLButtonElement} */ (document.getElementById('ack-confirm'));
  var ackTitle = document.getElementById('ack-title');
  var ackLabel = document.querySelector('label[for="ack-name"]');
  var silenceDialog = /** @type {HTMLDialogElement} */ (document.getElementById('silence-dialog'));
  var silenceForm = /** @type {HTMLFormElement} */ (document.getElementById('silence-form'));
  var silenceScope = document.getElementById('silence-scope');
  var silenceTeamRow = document.getElementById('silence-team-row');
  var silenceTeam = /** @type {HTMLSelectElement} */ (document.getElementById('silence-team'));
  var silenceMinutes = /** @type {HTMLSelectElement} */ (document.getElementById('silence-minutes'));
  var silenceReason = /** @type {HTMLInputElement} */ (document.getElementById('silence-reason'));
  var silenceName = /** @type {HTMLInputElement} */ (document.getElementById('silence-name'));
  var silenceRule = document.getElementById('silence-rule');
  var silenceError = document.getElementById('silence-error');
  var silenceConfirm = /** @type {HTMLButtonElement} */ (document.getElementById('silence-confirm'));
  var monitoringDialog = /** @type {HTMLDialogElement} */ (document.getElementById('monitoring-dialog'));
  var monitoringForm = /** @type {HTMLFormElement} */ (document.getElementById('monitoring-form'));
  var monitoringTitle = document.getElementById('monitoring-title');
  var monitoringSummary = document.getElementById('monitoring-summary');
  var monitoringReasonRow = document.getElementById('monitoring-reason-row');
  var monitoringReason = /** @type {HTMLSelectElement} */ (document.getElementById('monitoring-reason'));
  var monitoringName = /** @type {HTMLInputElement} */ (document.getElementById('monitoring-name'));
  var monitoringRule = document.getElementById('monitoring-rule');
  var monitoringError = document.getElementById('monitoring-error');
  var monitoringConfirm = /** @type {HTMLButtonElement} */ (document.getElementById('monitoring-confirm'));

  var STALE_MS = 30 * 60 * 1000;
  // Every action asks for its actor's name, typed each time: the board is often a shared screen, where a name kept
  // from the last user (as it was until 2026-12-05) let one Enter record an action under someone else's name.
  // A name an earlier version kept in this browser is removed.
  try {
    localStorage.removeItem('crs-board-name');
  } catch {
    /* no storage in this browser: nothing kept */
  }
  var state = {
    serverOffset: 0,
    live: false,
    lastData: null,
    authFailed: false,
    serverError: null, // the status of the last view's failed answer (500, 503), until one is answered
    view: null, // {kind: 'list'} or {kind: 'patient', id}
    hours: 72,
    flash: {},
    listOffset: 0, // the list is shown a page at a time (LIST_PAGE patients): 2,000 stay usable
    nameAction: null, // what the name dialog does: {submit: function (by) -> promise}
    silenceFor: null, // {patientId} or {team: true}
    monitoringFor: null, // {patientId, action: 'end' | 'resume'}: what the monitoring dialog confirms
    opener: null, // the button that opened the dialog
    returnFocus: null, // its key
    returnFallback: null, // where the focus goes when that button has gone meanwhile: its patient (or the team button)
    paging: null, // the ladders and the grade a silence never holds, from the server
  };

  // ------------------------------------------------------------------------------------------------ formatting
  // Every time in the site's zone (the API says which), in the one format of the pages and the acknowledge page:
  // 2026-12-01 09:20 CET (formatSiteTime in shared/domain/time.ts; test/browser checks that the two agree).
  var siteZone = 'UTC';
  var siteFmt = zoneFormat(siteZone);
  function zoneFormat(zone) {
    return new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
  }
  function setZone(zone) {
    if (!zone || zone === siteZone) return;
    siteFmt = zoneFormat(zone);
    siteZone = zone;
  }
  function siteParts(ms) {
    var p = {};
    siteFmt.formatToParts(ms).forEach(function (x) {
      p[x.type] = x.value;
    });
    return p;
  }
  function siteDay(p) {
    return p.year + '-' + p.month + '-' + p.day;
  }
  function siteTime(ms) {
    var p = siteParts(ms);
    return siteDay(p) + ' ' + p.hour + ':' + p.minute + ' ' + p.timeZoneName;
  }

  function now() {
    return Date.now() + state.serverOffset;
  }
  function when(iso) {
    return siteTime(Date.parse(iso));
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
    time: function (ms) {
      var p = siteParts(ms);
      return p.hour + ':' + p.minute;
    },
    dateTime: siteTime,
    day: function (ms) {
      return siteDay(siteParts(ms));
    },
    // Minutes east of UTC at an instant (the grid follows the site's wall clock).
    offsetMinutes: function (ms) {
      var p = siteParts(ms);
      return Math.round(
        (Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - Math.floor(ms / 60000) * 60000) / 60000,
      );
    },
  };
  var TEAM = {
    hematology: 'hematology',
    icu: 'ICU',
    neurology: 'neurology',
    radiology: 'radiology',
    bedside: 'bedside',
  };
  function teamName(t) {
    return TEAM[t] || t;
  }
  function cap(s) {
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function inMinutes(iso) {
    var s = Math.round((Date.parse(iso) - now()) / 1000);
    if (s <= 0) return 'due now';
    if (s < 60) return 'in ' + s + ' s';
    return 'in ' + Math.round(s / 60) + ' min';
  }
  function condName(c) {
    return c === 'crs' ? 'CRS' : 'ICANS';
  }
  function therapyName(t) {
    return t === 'car-t' ? 'CAR-T' : t === 'bispecific' ? 'bispecific' : t;
  }
  function where(p) {
    return p.wardAlert ? 'Ward ' + p.ward : p.bed ? 'Bed ' + p.bed : 'No bed';
  }
  // Who a page is about, in a sentence: a patient (bed and id), or a ward (a ward's "no data" alert). The bed as
  // written (as the card, the pages and the acknowledge page write it): only the word is lower case.
  function about(p) {
    return p.wardAlert ? 'ward ' + p.ward : (p.bed ? 'bed ' + p.bed : 'no bed') + ', patient ' + p.patientId;
  }

  // ------------------------------------------------------------------------------------------------------- DOM
  // An element's handlers (h's "on…" attributes), looked up at each event: an update in place (patchChildren) gives
  // the element on screen the handlers of the one just built, with the data they act on.
  var handlers = new WeakMap();
  function dispatch(ev) {
    var on = handlers.get(ev.currentTarget);
    if (on?.[ev.type]) on[ev.type](ev);
  }
  // What a phone keeps on one line (a time with its zone, a value with its unit, "MAP < 65", "1-2 doses"): the
  // acknowledge page's rule (shared/domain/unbroken.ts), sent by the server with every answer, not a copy. Until
  // 2026-12-06 a 360 px phone read "2026-" / "12-06 17:55 CET". Every text h writes goes through it.
  var unbroken = null;
  function setUnbroken(source) {
    if (typeof source === 'string' && (!unbroken || unbroken.source !== source)) unbroken = new RegExp(source, 'g');
  }
  /** Text as nodes: each piece to keep whole in a span that does not wrap; still text, never HTML. */
  function readable(text) {
    text = String(text);
    if (!unbroken) return [document.createTextNode(text)];
    var out = [];
    var from = 0;
    for (var m of text.matchAll(unbroken)) {
      if (m.index > from) out.push(document.createTextNode(text.slice(from, m.index)));
      var span = document.createElement('span');
      span.className = 'nw';
      span.textContent = m[0];
      out.push(span);
      from = m.index + m[0].length;
    }
    if (from < text.length || out.length === 0) out.push(document.createTextNode(text.slice(from)));
    return out;
  }
  function putText(e, text) {
    e.textContent = '';
    readable(text).forEach(function (n) {
      e.appendChild(n);
    });
  }
  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'text') putText(e, v);
        else if (k === 'class') e.className = v;
        else if (k.slice(0, 2) === 'on') {
          if (!handlers.has(e)) handlers.set(e, {});
          handlers.get(e)[k.slice(2)] = v;
          e.addEventListener(k.slice(2), dispatch);
        } else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (typeof c !== 'string') return e.appendChild(c);
      readable(c).forEach(function (n) {
        e.appendChild(n);
      });
    });
    return e;
  }

  // Updates in place. What a live update draws is built anew (h), then written into what is on screen: only the
  // texts and attributes that changed, each element matched to its like (by its key, else by its kind in order), so
  // that the element a user is on is never replaced. Until 2026-12-05 a card was drawn anew at each new reading of
  // its patient and the focus given to the new button: a screen reader said the button again at every reading.
  var KEYS = [
    'data-key',
    'data-patient',
    'data-group',
    'data-page',
    'data-silence',
    'data-unreadable',
    'data-ward',
    'id',
  ];
  function keyOf(n) {
    if (n.nodeType !== 1) return null;
    for (var i = 0; i < KEYS.length; i++) {
      var v = n.getAttribute(KEYS[i]);
      if (v !== null) return KEYS[i] + '=' + v;
    }
    return null;
  }
  function patch(from, to) {
    if (from === to) return;
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    var i, a;
    for (i = from.attributes.length - 1; i >= 0; i--) {
      a = from.attributes[i];
      if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
    }
    for (i = 0; i < to.attributes.length; i++) {
      a = to.attributes[i];
      if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
    }
    var on = handlers.get(to);
    if (on) {
      for (var type in on) from.addEventListener(type, dispatch);
      handlers.set(from, on);
    } else handlers.delete(from);
    patchChildren(from, Array.prototype.slice.call(to.childNodes));
  }
  /**
   * Makes `parent`'s children `wanted` (new nodes, or keyed ones already there), each kept child that matches one
   * updated in place; returns the children as they are now. The child holding the focus is never moved: the others
   * are put around it (a node moved loses the focus).
   */
  function patchChildren(parent, wanted) {
    var keyed = {};
    var loose = [];
    for (var c = parent.firstChild; c; c = c.nextSibling) {
      var k = keyOf(c);
      if (k === null) loose.push(c);
      else keyed[k] = c;
    }
    var at = 0;
    var nodes = wanted
      .filter(function (n) {
        return n !== null && n !== undefined && n !== false;
      })
      .map(function (n) {
        var k = keyOf(n);
        var old = null;
        if (n.parentNode === parent) old = n;
        else if (k !== null) old = keyed[k] && keyed[k].nodeName === n.nodeName ? keyed[k] : null;
        else {
          // The next of its kind and class (a part that appeared or went leaves the others matched), else the next
          // child if of its kind (an element whose class changed: a card whose grade changed).
          var j = at;
          while (
            j < loose.length &&
            !(
              loose[j].nodeName === n.nodeName &&
              (n.nodeType !== 1 || loose[j].getAttribute('class') === n.getAttribute('class'))
            )
          )
            j++;
          if (j === loose.length && at < loose.length && loose[at].nodeName === n.nodeName) j = at;
          if (j < loose.length) {
            old = loose[j];
            at = j + 1;
          }
        }
        if (!old) return n;
        if (k !== null) delete keyed[k];
        patch(old, n);
        return old;
      });
    var kept = new Set(nodes);
    for (var d = parent.firstChild; d; ) {
      var next = d.nextSibling;
      if (!kept.has(d)) parent.removeChild(d);
      d = next;
    }
    var focus = document.activeElement;
    var anchor = -1;
    for (var i = 0; i < nodes.length; i++) if (nodes[i].parentNode === parent && nodes[i].contains(focus)) anchor = i;
    for (i = anchor - 1; i >= 0; i--)
      if (nodes[i].nextSibling !== nodes[i + 1]) parent.insertBefore(nodes[i], nodes[i + 1]);
    var before = anchor >= 0 ? nodes[anchor].nextSibling : parent.firstChild;
    for (i = anchor + 1; i < nodes.length; i++) {
      if (nodes[i] === before) before = before.nextSibling;
      else parent.insertBefore(nodes[i], before);
    }
    return nodes;
  }

  function gradeBadge(condition, grade) {
    return h('span', {
      class: 'grade g' + grade,
      text: condName(condition) + ' ' + grade,
      title: condName(condition) + ' grade ' + grade + ' (provisional)',
    });
  }

  function ageEl(iso, prefix) {
    return h('span', { class: 'age', 'data-age': iso, 'data-prefix': prefix || '' }, [
      (prefix || '') + when(iso) + ' (' + ago(iso) + ')',
    ]);
  }
  function tickAges() {
    var soon = document.querySelectorAll('[data-in]');
    for (var j = 0; j < soon.length; j++) putText(soon[j], '(' + inMinutes(soon[j].getAttribute('data-in')) + ')');
    var list = document.querySelectorAll('[data-age]');
    for (var i = 0; i < list.length; i++) showAge(list[i]);
  }
  // An age, and for the last vitals whether they are stale (older than 30 min): when drawn, and at every tick.
  function showAge(e) {
    var iso = e.getAttribute('data-age');
    var stale = now() - Date.parse(iso) > STALE_MS;
    putText(
      e,
      e.getAttribute('data-prefix') +
        when(iso) +
        ' (' +
        ago(iso) +
        (stale && e.hasAttribute('data-stale') ? ', stale' : '') +
        ')',
    );
    e.classList.toggle('stale', stale && e.hasAttribute('data-stale'));
  }

  // What arrives together is said together: a grade change pages its teams within a millisecond, and each text
  // replacing the one before had a screen reader say the last team's page only. A flood is said in short.
  var toSay = [];
  var sayTimer = null;
  function announce(text) {
    toSay.push(text);
    if (sayTimer) return;
    announcer.textContent = '';
    sayTimer = setTimeout(function () {
      sayTimer = null;
      var more = toSay.length - 3;
      announcer.textContent =
        more > 1 ? toSay.slice(0, 3).join(' ') + ' And ' + more + ' more: see the board.' : toSay.join(' ');
      toSay = [];
    }, 250);
  }

  function setStatus() {
    var data = state.lastData;
    var asOf = data ? ' · data as of ' + siteTime(Date.parse(data.serverTime)) : '';
    var text, cls;
    if (state.authFailed) {
      text = 'No access key';
      cls = 'status down';
    } else if (state.serverError) {
      text = 'Server error (HTTP ' + state.serverError + '): showing the last answer';
      cls = 'status down';
    } else if (state.live) {
      text = 'Live';
      cls = 'status live';
    } else {
      text = 'Reconnecting…';
      cls = 'status down';
    }
    // Written only when it changes: a live region written again, even with the same text, is said again (at every
    // update the board draws, each second on a busy ward).
    setText(statusState, text);
    setText(statusAsOf, asOf);
    statusEl.className = cls;
  }
  function setText(e, text) {
    if (e.textContent !== text) putText(e, text);
  }

  // ------------------------------------------------------------------------------------------------------- API
  function api(path, options) {
    return fetch(path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options || {})).then(
      function (res) {
        // An answer from the server, a refusal too (a proxy's 502, 503 or 504 says it did not answer).
        if (res.status < 502 || res.status > 504) heard();
        if (res.status === 401) {
          state.authFailed = true;
          setStatus();
          renderNoKey();
          throw new Error('unauthorised');
        }
        state.authFailed = false;
        // A proxy's error page is not JSON: its status still says what happened.
        return res
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            return { status: res.status, body: body };
          });
      },
    );
  }

  function renderNoKey() {
    main.textContent = '';
    main.appendChild(
      h('div', { class: 'notice' }, [
        h('h2', { text: 'This board needs its access key' }),
        h('p', {
          text:
            'Open the link that crs serve printed when it started (it looks like http://127.0.0.1:8080/?key=…). ' +
            'The key is kept in this browser for the session, never in the address bar.',
        }),
      ]),
    );
  }

  // -------------------------------------------------------------------------------------------------- patients
  function vitalsList(p) {
    var v = p.vitals;
    var items = [];
    function item(label, value, cls) {
      items.push(h('li', { class: cls }, [h('abbr', { title: label.title, text: label.short }), ' ' + value]));
    }
    if (v.temperatureC)
      item(
        { short: 'T', title: 'Temperature' },
        v.temperatureC.value + ' °C',
        v.temperatureC.value >= p.limits.feverC ? 'high' : null,
      );
    if (v.heartRate) item({ short: 'HR', title: 'Heart rate' }, v.heartRate.value + '/min');
    if (v.systolicBP || v.meanArterialPressure) {
      var sys = v.systolicBP ? v.systolicBP.value : null;
      var mapv = v.meanArterialPressure ? v.meanArterialPressure.value : null;
      var text =
        (sys !== null ? sys : '–') +
        '/' +
        (v.diastolicBP ? v.diastolicBP.value : '–') +
        (mapv !== null ? ' (MAP ' + mapv + ')' : '') +
        ' mmHg';
      var low = (sys !== null && sys < p.limits.systolicBelow) || (mapv !== null && mapv < p.limits.mapBelow);
      item({ short: 'BP', title: 'Blood pressure' }, text, low ? 'low' : null);
    }
    if (v.spo2) item({ short: 'SpO2', title: 'Oxygen saturation' }, v.spo2.value + ' %');
    if (v.respiratoryRate) item({ short: 'RR', title: 'Respiratory rate' }, v.respiratoryRate.value + '/min');
    if (p.oxygen)
      item(
        { short: 'O2', title: 'Oxygen support' },
        window.CrsChart.o2Text({
          device: p.oxygen.value,
          flowLpm: p.oxygen.flowLpm === null ? undefined : p.oxygen.flowLpm,
          fio2: p.oxygen.fio2 === null ? undefined : p.oxygen.fio2,
          forComfort: p.oxygen.forComfort,
        }),
      );
    if (p.vasopressors && p.vasopressors.value.length > 0)
      item({ short: 'Pressors', title: 'Vasopressors infusing' }, window.CrsChart.pressorText(p.vasopressors.value));
    if (p.neuro && p.neuro.iceScore !== null)
      item({ short: 'ICE', title: 'ICE score (0-10)' }, p.neuro.iceScore + '/10, ' + p.neuro.value);
    return h('ul', { class: 'vitals', 'aria-label': 'Latest observations' }, items);
  }

  // ------------------------------------------------------------------------------------------------------ pages
  var STATE = {
    waiting: { icon: '●', label: 'Waiting' },
    held: { icon: '‖', label: 'Held by a silence' },
    acknowledged: { icon: '✓', label: 'Acknowledged' },
    exhausted: { icon: '⚠', label: 'Nobody acknowledged' },
    superseded: { icon: '↑', label: 'Replaced by a newer page' },
    resolved: { icon: '↓', label: 'Closed: grade fell or alert cleared' },
    info: { icon: 'i', label: 'For information' },
  };
  var VIA = { link: 'the page link', board: 'the board', api: 'the API' };

  // p: the patient, or the ward of a ward's alert, which stands for several monitors (until 2026-12-06 "the monitor").
  function groupTitle(g, p) {
    if (g.subject === 'stale-feed' && p && p.wardAlert)
      return g.kind === 'alert' ? "No data from the ward's monitors" : "The ward's monitor data resumed";
    if (g.subject === 'stale-feed') return g.kind === 'alert' ? 'No data from the monitor' : 'Monitor data resumed';
    if (g.subject === 'spo2')
      return g.kind === 'alert' ? 'Low SpO2 without oxygen support' : 'Low SpO2 warning cleared';
    return (
      condName(g.subject) +
      ' grade ' +
      g.grade +
      ' (' +
      g.kind +
      (g.fromGrade !== null ? ' from ' + g.fromGrade : '') +
      ')'
    );
  }

  function teamPageItem(tp, g, p) {
    var st = STATE[tp.state] || { icon: '', label: tp.state };
    var sent = tp.sent.map(function (s) {
      return s.role + ' ' + when(s.at);
    });
    var parts = [
      h('span', { class: 'state-label' }, [h('span', { 'aria-hidden': 'true', text: st.icon + ' ' }), st.label]),
      ' ',
      h('strong', { text: cap(teamName(tp.team)) }),
      // A group past the retention (g.pastRetention): its sends are gone, not unsent (until 2026-12-07 "not sent yet").
      ': ' +
        (sent.length
          ? 'paged ' + sent.join(', then ')
          : g.pastRetention
            ? 'sends past the retention'
            : 'not sent yet') +
        '.',
    ];
    var li = h('li', { class: 'team-page state-' + tp.state, 'data-page': tp.pageId }, parts);
    // A send whose stored record cannot be read: named, for an operator to mend (the others are listed above).
    if (tp.unreadableSends?.length)
      li.appendChild(
        h('span', {
          class: 'unreadable',
          text:
            ' A send record of it cannot be read: ' +
            tp.unreadableSends
              .map(function (u) {
                return u.sendId + ' (' + u.reason + ')';
              })
              .join(', ') +
            '.',
        }),
      );
    if (tp.state === 'waiting' && tp.next) {
      li.appendChild(
        h('span', { class: 'next' }, [
          ' Next if nobody answers: ' + tp.next.role + ' at ' + when(tp.next.at) + ' ',
          h('span', { 'data-in': tp.next.at, text: '(' + inMinutes(tp.next.at) + ')' }),
          '.',
        ]),
      );
    } else if (tp.state === 'waiting' && tp.exhaustsAt) {
      li.appendChild(
        h('span', {
          class: 'next',
          text: ' Last level of the ladder: marked unanswered at ' + when(tp.exhaustsAt) + '.',
        }),
      );
    } else if (tp.state === 'held' && tp.heldBy) {
      li.appendChild(
        h('span', {
          class: 'next',
          text:
            ' Silence by ' +
            tp.heldBy.createdBy +
            ' until ' +
            when(tp.heldBy.until) +
            ' (' +
            tp.heldBy.reason +
            '); ' +
            tp.role +
            ' is paged when it ends, if still unanswered.',
        }),
      );
    } else if (tp.state === 'acknowledged' && tp.ack) {
      li.appendChild(
        h('span', {
          class: 'next',
          text: ' By ' + tp.ack.by + ' at ' + when(tp.ack.at) + ' via ' + (VIA[tp.ack.via] || tp.ack.via) + '.',
        }),
      );
    } else if (tp.state === 'exhausted') {
      li.appendChild(
        h('span', {
          class: 'next',
          text:
            ' Every level was paged ' +
            tp.loops +
            (tp.loops === 1 ? ' time' : ' times') +
            '. Call the team; a late acknowledgement is still recorded.',
        }),
      );
    }
    if (tp.state === 'waiting' || tp.state === 'held' || tp.state === 'exhausted') {
      var label = 'Acknowledge the ' + teamName(tp.team) + ' page: ' + groupTitle(g, p) + ', ' + about(p);
      li.appendChild(
        h(
          'button',
          {
            type: 'button',
            class: 'ack primary',
            'data-key': 'ack:' + tp.pageId,
            'aria-label': label,
            onclick: function (e) {
              openAck(tp, g, p, e.currentTarget);
            },
          },
          ['Acknowledge'],
        ),
      );
    }
    return li;
  }

  /**
   * When the grade change was first paged to anyone: its earliest send, not when its pages were opened. A page a silence
   * held was opened but sent to nobody; until 2026-12-06 the line read "paged <time>" of it all the same.
   */
  function pagedWhen(g) {
    var first = null;
    g.pages.forEach(function (tp) {
      tp.sent.forEach(function (s) {
        if (first === null || Date.parse(s.at) < Date.parse(first)) first = s.at;
      });
    });
    if (first !== null) return 'paged ' + when(first);
    return g.pages.some(function (tp) {
      return tp.heldBy;
    })
      ? 'held by a silence, not paged yet'
      : 'not paged yet';
  }

  function groupItem(g, p) {
    var cls = 'page ' + g.kind + (g.technical ? ' technical' : '') + (g.current ? '' : ' history');
    var head = [h('span', { class: 'title', text: groupTitle(g, p) })];
    if (g.technical) head.push(h('span', { class: 'tag', text: 'Technical alert · not a grade' }));
    else if (!g.current) head.push(h('span', { class: 'tag', text: 'History' }));
    var li = h('li', { class: cls, 'data-group': g.notificationId }, [
      h('div', { class: 'head' }, head),
      g.technical ? h('p', { class: 'summary', text: g.summary }) : null,
      h('div', {
        class: 'when',
        text: g.technical
          ? 'Raised ' + when(g.triggeredAt)
          : g.pastRetention
            ? 'First page opened ' + when(g.triggeredAt)
            : 'Grade changed ' + when(g.at) + ' (patient time) · ' + pagedWhen(g),
      }),
      g.pastRetention
        ? h('p', {
            class: 'past-retention',
            // A technical alert has no reasons nor next steps to lose, only its sends (2026-12-07).
            text:
              (g.technical ? 'Sends' : 'Reasons, next steps and sends') +
              ' past the ' +
              g.pastRetention.days +
              '-day retention: crs audit export has them. The pages below are as recorded.',
          })
        : null,
      g.unreadable
        ? h('p', { class: 'unreadable', text: 'Why and next steps not shown: ' + g.unreadable + '.' })
        : null,
      g.reasons.length ? h('div', { class: 'label', text: 'Why' }) : null,
      g.reasons.length
        ? h(
            'ul',
            {},
            g.reasons.map(function (r) {
              return h('li', { text: r });
            }),
          )
        : null,
      g.actions.length ? h('div', { class: 'label', text: 'Next steps (local protocol, decision support)' }) : null,
      g.actions.length
        ? h(
            'ul',
            {},
            g.actions.map(function (a) {
              return h('li', { text: a });
            }),
          )
        : null,
      h('div', { class: 'label', text: 'Paged, per team' }),
      h(
        'ul',
        { class: 'team-pages' },
        g.pages.map(function (tp) {
          return teamPageItem(tp, g, p);
        }),
      ),
    ]);
    return li;
  }

  // Pages (or silences) whose stored record cannot be read: listed by id with why, where the others are, to be mended;
  // a silence can be ended here too (until 2026-12-05 only crs silence end and the API could).
  function unreadableList(items, what) {
    if (!items?.length) return null;
    return h(
      'ul',
      { class: 'list unreadable-list', 'aria-label': what + ' that cannot be read' },
      items.map(function (u) {
        if (u.silenceId) return unreadableSilenceItem(u);
        var id = u.pageId || u.patientId;
        return h('li', {
          class: 'unreadable',
          'data-unreadable': id,
          text:
            what.replace(/s$/, '') +
            ' ' +
            id +
            ': its stored record cannot be read (' +
            u.reason +
            ')' +
            (u.pageId ? '; the pager has set it aside' : '') +
            '. An operator must mend or delete it.',
        });
      }),
    );
  }

  function unreadableSilenceText(u) {
    return (
      'Silence ' +
      u.silenceId +
      (u.patientId ? ' of patient ' + u.patientId : '') +
      ': its stored record cannot be read (' +
      u.reason +
      ')'
    );
  }

  function unreadableSilenceItem(u) {
    return h('li', { class: 'unreadable', 'data-unreadable': u.silenceId }, [
      h('span', {
        class: 'unreadable-text',
        text: unreadableSilenceText(u) + '; it holds nothing. End it, or an operator can mend it.',
      }),
      ' ',
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-key': 'end:' + u.silenceId,
          'aria-label': 'End silence ' + u.silenceId + ' (its stored record cannot be read)',
          onclick: function (e) {
            openEndSilence(
              u.silenceId,
              unreadableSilenceText(u) + '. It holds nothing; ended, it is no longer listed.',
              e.currentTarget,
            );
          },
        },
        ['End silence'],
      ),
    ]);
  }

  function pagingSection(p, detail) {
    var section = h('section', { class: 'pages', 'aria-label': 'Pages' }, []);
    var bad = unreadableList(p.unreadablePages, 'Pages');
    if (p.paging.length === 0) section.appendChild(h('p', { text: 'No pages waiting.' }));
    else {
      // A level below the card's heading (h3 in the list, h2 in a patient's view).
      section.appendChild(h(detail ? 'h3' : 'h4', { text: 'Pages (' + p.waiting + ' waiting)' }));
      section.appendChild(
        h(
          'ul',
          { class: 'list' },
          p.paging.map(function (g) {
            return groupItem(g, p);
          }),
        ),
      );
    }
    if (bad) section.appendChild(bad);
    return section;
  }

  function silenceText(s) {
    var scope = s.scope.patientId ? 'This patient' : 'Team ' + teamName(s.scope.team);
    return scope + ' silenced until ' + when(s.until) + ' by ' + s.createdBy + ' (' + s.reason + ')';
  }

  function silenceItem(s) {
    return h('li', { class: 'silence', 'data-silence': s.silenceId }, [
      h('span', { 'aria-hidden': 'true', text: '‖ ' }),
      silenceText(s) + '. ',
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-key': 'end:' + s.silenceId,
          // The name starts with the words on the button (said by a speech user: "click End silence").
          'aria-label': 'End silence: ' + silenceText(s),
          onclick: function (e) {
            openEndSilence(s.silenceId, silenceText(s) + '. Pages it holds are sent at once.', e.currentTarget);
          },
        },
        ['End silence'],
      ),
    ]);
  }

  function silencesOf(p) {
    var items = p.silences.map(silenceItem);
    var box = h('div', { class: 'silences' }, [
      items.length ? h('ul', { class: 'silence-list', 'aria-label': 'Silences' }, items) : null,
    ]);
    box.appendChild(
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-key': 'silence:' + p.patientId,
          'aria-label': 'Silence pages for ' + about(p),
          onclick: function (e) {
            openSilence({ patientId: p.patientId, label: where(p) + ', patient ' + p.patientId }, e.currentTarget);
          },
        },
        ['Silence…'],
      ),
    );
    box.appendChild(document.createTextNode(' '));
    box.appendChild(monitoringButton(p));
    return box;
  }

  // Ending a patient's monitoring (a discharge: the no-data watch stops) or resuming it (a re-admission).
  function monitoringButton(p) {
    var ended = !!p.monitoringEnded;
    return h(
      'button',
      {
        type: 'button',
        class: 'small',
        'data-key': (ended ? 'resume:' : 'end-monitoring:') + p.patientId,
        'aria-label': (ended ? 'Resume monitoring of ' : 'End monitoring of ') + about(p),
        onclick: function (e) {
          openMonitoring(p, ended ? 'resume' : 'end', e.currentTarget);
        },
      },
      [ended ? 'Resume monitoring…' : 'End monitoring…'],
    );
  }

  function card(p, detail) {
    var sev = Math.max(p.crs.grade, p.icans.grade);
    var name = where(p) + ' · patient ' + p.patientId;
    var meta = [
      p.ward ? 'ward ' + p.ward : null,
      p.therapy ? therapyName(p.therapy) + (p.product ? ' ' + p.product : '') : null,
      p.dayPostInfusion !== null
        ? 'day ' + (p.dayPostInfusion < 0 ? '' : '+') + p.dayPostInfusion + ' since infusion'
        : 'not enrolled',
      // No stale-feed watch: a quiet monitor is expected (docs/paging.md).
      p.monitoringEnded ? 'monitoring ended (' + p.monitoringEnded.reason + ') ' + when(p.monitoringEnded.at) : null,
    ]
      .filter(Boolean)
      .join(' · ');
    var reasons = [];
    if (p.crs.grade > 0) reasons.push('CRS: ' + p.crs.reasons.join('; '));
    if (p.icans.grade > 0) reasons.push('ICANS: ' + p.icans.reasons.join('; '));
    var lastVitals = p.lastVitalsAt
      ? ageEl(p.lastVitalsAt, 'Last vitals ')
      : h('span', { class: 'age', text: 'No vitals yet' });
    if (p.lastVitalsAt) {
      lastVitals.setAttribute('data-stale', '');
      showAge(lastVitals); // stale at once, not from the next tick (up to 15 s later, and again after each redraw)
    }
    // ICANS 0 rests on the neuro fields charted, normal before any (grading-rules section 8): said with their age, so
    // that an ICE score of yesterday, or none at all (monitors send none), is not read as an assessment of now.
    var lastNeuro = p.neuro
      ? ageEl(p.neuro.at, ' · Last neuro assessment ')
      : h('span', { class: 'age', text: ' · No neuro assessment yet' });
    var article = h(
      'article',
      {
        class: 'card sev-' + sev + (p.monitoringEnded ? ' ended' : '') + (state.flash[p.patientId] ? ' flash' : ''),
        'aria-label': name,
      },
      [
        h(detail ? 'h2' : 'h3', detail ? { tabindex: '-1', 'data-key': 'heading' } : {}, [
          detail
            ? name
            : h('a', {
                href: '#/patient/' + encodeURIComponent(p.patientId),
                'data-key': 'open:' + p.patientId,
                text: name,
              }),
        ]),
        h('p', { class: 'meta', text: meta }),
        h('div', { class: 'grades' }, [gradeBadge('crs', p.crs.grade), gradeBadge('icans', p.icans.grade)]),
        reasons.length ? h('p', { class: 'reasons', text: reasons.join(' — ') }) : null,
        vitalsList(p),
        h('p', {}, [
          lastVitals,
          lastNeuro,
          h('span', { class: 'age', text: ' · grades as of ' + when(p.clock) + ' (' + p.scheme + ')' }),
        ]),
        pagingSection(p, detail),
        silencesOf(p),
      ],
    );
    return article;
  }

  // ---------------------------------------------------------------------------------------------------- views
  // The focused control is kept by the update in place; one that the update did take out (an Acknowledge button whose
  // page moved to another grade's group) is focused again where it now is, rather than the focus lost to the page.
  // Only then: a patient's Acknowledge buttons are on its card and in its pages, with the same key, and the focus on
  // the second went to the first at each update until 2026-12-05.
  function keepFocus(render) {
    var active = document.activeElement;
    var key = active?.getAttribute?.('data-key');
    render();
    if (key && !active.isConnected) {
      var again = main.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again instanceof HTMLElement && again !== document.activeElement) again.focus({ preventScroll: true });
    }
  }

  // A view opened from the page (a link, Enter on a patient, the address): the focus goes to its heading, and a
  // screen reader says which view it is; the focus stayed on the main region as the view changed under it until
  // 2026-12-05. Not when the focus is elsewhere (a control, a dialog) or the board has just been opened.
  function focusHeading() {
    if (document.activeElement !== main) return;
    var heading = main.querySelector('[data-key="heading"], [data-key="list-heading"]');
    if (heading instanceof HTMLElement) heading.focus();
  }

  var listCache = {};
  function renderList(data) {
    var ul = document.getElementById('patients');
    var built = !ul;
    if (!ul) {
      main.textContent = '';
      listCache = {};
      main.appendChild(
        h('div', { class: 'toolbar' }, [
          h('h2', { text: 'Patients', tabindex: '-1', 'data-key': 'list-heading' }),
          h('span', { class: 'counts', id: 'counts' }),
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              'data-key': 'silence-team',
              onclick: function (e) {
                openSilence({ team: true }, e.currentTarget);
              },
            },
            ['Silence a team…'],
          ),
        ]),
      );
      main.appendChild(h('section', { id: 'unreadable', 'aria-label': 'Stored records that cannot be read' }));
      main.appendChild(h('section', { id: 'team-silences', 'aria-label': 'Team silences in force' }));
      main.appendChild(h('section', { id: 'ward-alerts', 'aria-label': 'Ward alerts' }));
      main.appendChild(leftOutSection());
      main.appendChild(h('nav', { class: 'list-pager', id: 'list-pager', 'aria-label': 'Pages of the patient list' }));
      ul = h('ul', { class: 'patients', id: 'patients' });
      main.appendChild(ul);
    }
    // The list shrank under this page (discharges): show its last page.
    if (data.patients.length === 0 && data.total > 0 && state.listOffset > 0) {
      state.listOffset = Math.floor((data.total - 1) / LIST_PAGE) * LIST_PAGE;
      scheduleRefresh(0);
      return;
    }
    renderLeftOut(data.leftOut);
    var open = data.waiting;
    document.getElementById('counts').textContent =
      data.total +
      ' patient' +
      (data.total === 1 ? '' : 's') +
      ' · ' +
      open +
      ' page' +
      (open === 1 ? '' : 's') +
      ' waiting · sickest first';
    keepFocus(function () {
      renderListPager(data);
    });
    keepFocus(function () {
      patchChildren(document.getElementById('ward-alerts'), [
        data.wards.length > 0 &&
          h(
            'ul',
            { class: 'list ward-alerts' },
            data.wards.map(function (w) {
              var p = { patientId: w.subject, ward: w.ward, wardAlert: true, bed: null };
              return h('li', { class: 'ward-alert', 'data-ward': w.ward }, [
                h('h3', { text: 'Ward ' + w.ward }),
                // The alert's list is of when it was raised; the ward's all-clear waits for the last patient. Those
                // still quiet are named, in the pages' words, so nobody chases a monitor that works (2026-12-06).
                w.quiet &&
                  w.quiet.length > 0 &&
                  h('p', {
                    class: 'ward-quiet',
                    text:
                      'Still without monitor data: ' +
                      w.quiet
                        .map(function (q) {
                          return q.patientId + (q.bed ? ', bed ' + q.bed : '');
                        })
                        .join('; ') +
                      '. Any other patient the alert names has monitor data again.',
                  }),
                // Who came back while it is open, and when (2026-12-07): the all-clear will name them the same.
                w.resumed &&
                  w.resumed.length > 0 &&
                  h('p', {
                    class: 'ward-resumed',
                    text:
                      'Resumed: ' +
                      w.resumed
                        .map(function (r) {
                          return r.patientId + (r.bed ? ', bed ' + r.bed : '') + ' at ' + when(r.at);
                        })
                        .join('; ') +
                      '.',
                  }),
                h(
                  'ul',
                  { class: 'list' },
                  w.paging.map(function (g) {
                    return groupItem(g, p);
                  }),
                ),
                unreadableList(w.unreadablePages, 'Pages'),
              ]);
            }),
          ),
      ]);
    });
    keepFocus(function () {
      patchChildren(document.getElementById('unreadable'), [
        unreadableList(data.unreadableSilences, 'Silences'),
        unreadableList(data.unreadablePatients, 'Patients'),
      ]);
    });
    keepFocus(function () {
      var teamSilences = data.silences.filter(function (s) {
        return s.scope.team;
      });
      patchChildren(document.getElementById('team-silences'), [
        teamSilences.length > 0 && h('ul', { class: 'silence-list banner-silences' }, teamSilences.map(silenceItem)),
      ]);
    });
    keepFocus(function () {
      // A card is built again only when its patient changed (or flashes), and written in place; in the server's
      // order (sickest first).
      var sigs = {};
      var items = data.patients.map(function (p) {
        var sig = (sigs[p.patientId] = JSON.stringify(p) + (state.flash[p.patientId] ? 'f' : ''));
        var cached = listCache[p.patientId];
        return cached && cached.sig === sig ? cached.li : h('li', { 'data-patient': p.patientId }, [card(p, false)]);
      });
      var emptyText =
        data.leftOut && data.leftOut.count > 0
          ? 'No current patients: every patient seen has left the list (above).'
          : 'No patients yet. Devices POST to /v1/messages; try crs simulate.';
      if (data.patients.length === 0) items.push(h('li', { id: 'empty', class: 'notice', text: emptyText }));
      listCache = {};
      patchChildren(ul, items).forEach(function (li, i) {
        var p = data.patients[i];
        if (p) listCache[p.patientId] = { sig: sigs[p.patientId], li: li };
      });
    });
    if (built) focusHeading();
  }

  // Patients whose monitoring ended long ago with nothing open leave the list (the server decides: leftOut); the
  // board says how many, and opens any patient by id. Built once with the list, so a refresh never clears what is
  // being typed.
  function leftOutSection() {
    var input = h('input', {
      id: 'open-patient',
      name: 'patientId',
      autocomplete: 'off',
      required: true,
      maxlength: '128',
      'data-key': 'open-patient',
    });
    return h('section', { class: 'left-out', id: 'left-out', 'aria-label': 'Patients not listed', hidden: true }, [
      h('p', { id: 'left-out-text' }),
      h(
        'form',
        {
          class: 'open-patient',
          onsubmit: function (e) {
            e.preventDefault();
            var id = input.value.trim();
            if (id) location.hash = '#/patient/' + encodeURIComponent(id);
          },
        },
        [
          h('label', { for: 'open-patient', text: 'Open a patient by id' }),
          input,
          h('button', { type: 'submit', class: 'small', 'data-key': 'open-patient-go' }, ['Open']),
        ],
      ),
    ]);
  }
  function renderLeftOut(leftOut) {
    var box = document.getElementById('left-out');
    var n = leftOut ? leftOut.count : 0;
    box.hidden = n === 0;
    if (n === 0) return;
    putText(
      document.getElementById('left-out-text'),
      n.toLocaleString('en-US') +
        (n === 1 ? ' patient is' : ' patients are') +
        ' not listed: monitoring ended (a discharge) over ' +
        leftOut.endedHours +
        ' h ago, with no page, alert, grade or silence open.',
    );
  }

  var LIST_PAGE = 50;
  var pagerOffset = 0;
  // Built once with the list; each update sets its buttons and its range, a live region said when it changes (a
  // region drawn anew at each update was new each time: never said when the page changed).
  function renderListPager(data) {
    var nav = document.getElementById('list-pager');
    var range = document.getElementById('list-range');
    if (!range) {
      range = h('span', { class: 'range', id: 'list-range', 'aria-live': 'polite' });
      nav.appendChild(
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            id: 'list-prev',
            'data-key': 'list-prev',
            onclick: function () {
              state.listOffset = Math.max(0, pagerOffset - LIST_PAGE);
              refresh();
            },
          },
          ['← Previous'],
        ),
      );
      nav.appendChild(range);
      nav.appendChild(
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            id: 'list-next',
            'data-key': 'list-next',
            onclick: function () {
              state.listOffset = pagerOffset + LIST_PAGE;
              refresh();
            },
          },
          ['Next →'],
        ),
      );
    }
    pagerOffset = data.offset; // the page shown: Previous and Next go from it
    var one = data.total <= data.patients.length && data.offset === 0;
    nav.hidden = one;
    if (one) return setText(range, '');
    var last = data.offset + data.patients.length;
    /** @type {HTMLButtonElement} */ (document.getElementById('list-prev')).disabled = data.offset === 0;
    /** @type {HTMLButtonElement} */ (document.getElementById('list-next')).disabled = last >= data.total;
    setText(range, 'Patients ' + (data.offset + 1) + '–' + last + ' of ' + data.total);
  }

  /** @type {[number, string][]} */
  var RANGES = [
    [6, '6 h'],
    [24, '24 h'],
    [72, '72 h'],
    [168, '7 days'],
  ];
  function renderPatientSkeleton(id) {
    main.textContent = '';
    var rangeButtons = RANGES.map(function (r) {
      return h(
        'button',
        {
          type: 'button',
          'data-key': 'range:' + r[0],
          'aria-pressed': String(state.hours === r[0]),
          onclick: function () {
            state.hours = r[0];
            refresh();
          },
        },
        [r[1]],
      );
    });
    main.appendChild(
      h('div', { class: 'detail' }, [
        h('a', { class: 'back', href: '#/', 'data-key': 'back' }, ['← All patients']),
        h('div', { id: 'd-card' }),
        h('section', { class: 'section', 'aria-labelledby': 'tl-title' }, [
          h('h3', { id: 'tl-title', text: 'Timeline' }),
          h('div', { class: 'range', role: 'group', 'aria-label': 'Time range (patient time)' }, rangeButtons),
          // The chart and the table scroll sideways on a narrow screen: each is a named region that takes the
          // focus, so that a keyboard scrolls it (arrow keys).
          h('div', { class: 'chart', id: 'chart', role: 'region', 'aria-label': 'Timeline chart', tabindex: '0' }),
          h('ul', { class: 'legend', 'aria-hidden': 'true' }, [
            legend('temperature', window.CrsChart.COLORS.temp),
            legend('systolic', window.CrsChart.COLORS.sys),
            legend('diastolic', window.CrsChart.COLORS.dia),
            legend('MAP (dashed)', window.CrsChart.COLORS.map),
            legend('SpO2', window.CrsChart.COLORS.spo2),
            h('li', {
              text: 'Meds: T tocilizumab, D dexamethasone, M methylprednisolone, H hydrocortisone, A acetaminophen, I ibuprofen, S siltuximab, K anakinra',
            }),
            h('li', { text: 'Dashed red lines: fever and hypotension limits' }),
          ]),
          h('details', {}, [
            h('summary', { text: 'Timeline as a table' }),
            h('div', {
              class: 'table-wrap',
              id: 'd-table',
              role: 'region',
              'aria-label': 'Timeline table',
              tabindex: '0',
            }),
          ]),
        ]),
        h('section', { class: 'section', 'aria-labelledby': 'pg-title' }, [
          h('h3', { id: 'pg-title', text: 'All pages' }),
          h('div', { id: 'd-pages' }),
        ]),
        h('section', { class: 'section', 'aria-labelledby': 'au-title' }, [
          h('h3', { id: 'au-title', text: 'Audit trail' }),
          h('p', {}, [
            'Every assessment, grade change, page, delivery, escalation, acknowledgement, alert and silence of this patient, oldest first: ',
            h('a', {
              href: 'api/patients/' + encodeURIComponent(id) + '/audit?format=csv',
              download: '',
              'data-key': 'audit-csv',
              text: 'CSV',
            }),
            ' · ',
            h('a', {
              href: 'api/patients/' + encodeURIComponent(id) + '/audit?format=ndjson',
              download: '',
              'data-key': 'audit-ndjson',
              text: 'NDJSON',
            }),
          ]),
        ]),
      ]),
    );
    main.setAttribute('data-patient', id);
  }
  function legend(text, color) {
    var sw = h('span', { class: 'sw' });
    sw.style.borderTopColor = color;
    return h('li', {}, [sw, text]);
  }

  function renderPatient(data) {
    var p = data.patient;
    var fresh = main.getAttribute('data-patient') !== p.patientId || !document.getElementById('d-card');
    if (fresh) renderPatientSkeleton(p.patientId);
    keepFocus(function () {
      patchChildren(document.getElementById('d-card'), [
        card(p, true),
        // A silence of this patient whose stored record cannot be read: named here too, to be ended.
        unreadableList(
          (data.unreadableSilences || []).filter(function (u) {
            return u.patientId === p.patientId;
          }),
          'Silences',
        ),
      ]);
      var buttons = main.querySelectorAll('.range button');
      for (var i = 0; i < buttons.length; i++)
        buttons[i].setAttribute('aria-pressed', String(buttons[i].getAttribute('data-key') === 'range:' + state.hours));
      putText(
        document.getElementById('tl-title'),
        'Timeline: last ' + (state.hours >= 168 ? '7 days' : state.hours + ' h') + ' of patient time',
      );
      window.CrsChart.render(document.getElementById('chart'), data.timeline, chartFmt);
      renderTable(data.timeline);
      renderAllPages(data.pages, p);
    });
    document.title = where(p) + ' · CRS ' + p.crs.grade + ' · ICANS ' + p.icans.grade + ' · on-call board';
    if (fresh) focusHeading();
  }

  function renderTable(tl) {
    var rows = tl.points.slice().reverse().slice(0, 500);
    var head = ['Observed', 'Temp °C', 'BP (MAP)', 'HR', 'SpO2', 'Oxygen', 'Pressors', 'Meds', 'ICE', 'CRS', 'ICANS'];
    var table = h('table', {}, [
      h('caption', { class: 'sr-only', text: 'Observations, newest first' }),
      h('thead', {}, [
        h(
          'tr',
          {},
          head.map(function (t) {
            return h('th', { scope: 'col', text: t });
          }),
        ),
      ]),
      h(
        'tbody',
        {},
        rows.map(function (r) {
          var v = r.vitals || {};
          var bp =
            v.systolicBP !== undefined || v.meanArterialPressure !== undefined
              ? (v.systolicBP !== undefined ? v.systolicBP : '–') +
                '/' +
                (v.diastolicBP !== undefined ? v.diastolicBP : '–') +
                (v.meanArterialPressure !== undefined ? ' (' + v.meanArterialPressure + ')' : '')
              : '';
          return h('tr', {}, [
            h('td', { text: when(r.t) }),
            h('td', { text: v.temperatureC !== undefined ? String(v.temperatureC) : '' }),
            h('td', { text: bp }),
            h('td', { text: v.heartRate !== undefined ? String(v.heartRate) : '' }),
            h('td', { text: v.spo2 !== undefined ? String(v.spo2) : '' }),
            h('td', { text: r.oxygen ? window.CrsChart.o2Text(r.oxygen) : '' }),
            h('td', {
              text: r.vasopressors
                ? r.vasopressors.length
                  ? window.CrsChart.pressorText(r.vasopressors)
                  : 'stopped'
                : '',
            }),
            h('td', {
              text: (r.medications || [])
                .map(function (m) {
                  return m.drug + (m.doseMg !== undefined ? ' ' + m.doseMg + ' mg' : '');
                })
                .join(', '),
            }),
            h('td', { text: r.neuro && r.neuro.iceScore !== undefined ? String(r.neuro.iceScore) : '' }),
            h('td', { text: String(r.crs) }),
            h('td', { text: String(r.icans) }),
          ]);
        }),
      ),
    ]);
    patchChildren(document.getElementById('d-table'), [
      table,
      tl.points.length > rows.length &&
        h('p', { text: 'Showing the newest ' + rows.length + ' of ' + tl.points.length + '.' }),
      // Observations whose stored record cannot be read: named, the others drawn.
      tl.unreadable &&
        tl.unreadable.length > 0 &&
        h('p', {
          class: 'unreadable',
          text:
            tl.unreadable.length +
            ' observation(s) cannot be read and are not shown: ' +
            tl.unreadable
              .map(function (u) {
                return u.messageId + ' (' + u.reason + ')';
              })
              .join(', ') +
            '.',
        }),
    ]);
  }

  function renderAllPages(groups, p) {
    // Pages whose record cannot be read are listed on the card above.
    patchChildren(document.getElementById('d-pages'), [
      groups.length === 0
        ? h('p', { text: 'No pages for this patient.' })
        : h(
            'ul',
            { class: 'list' },
            groups.map(function (g) {
              return groupItem(g, p);
            }),
          ),
    ]);
  }

  // ----------------------------------------------------------------------------- acknowledgements and silences
  /** The name dialog: acknowledging a page, or ending a silence. `submit(by)` resolves to an error text or null. */
  function openNameDialog(o, button) {
    state.nameAction = o;
    openedBy(button, o.focusAfter);
    ackTitle.textContent = o.title;
    putText(ackSummary, o.summary);
    ackLabel.textContent = o.label;
    ackConfirm.textContent = o.confirm;
    ackError.textContent = '';
    ackName.value = '';
    ackConfirm.disabled = false;
    dialog.showModal();
    ackName.focus();
  }

  function openAck(tp, g, p, button) {
    openNameDialog(
      {
        title: 'Acknowledge page',
        summary:
          groupTitle(g, p) +
          ' for ' +
          about(p) +
          '. ' +
          cap(teamName(tp.team)) +
          ' page, now with ' +
          tp.role +
          '. Acknowledging stops this team\u2019s escalation.',
        label: 'Your name (recorded with the time)',
        confirm: 'Acknowledge',
        focusAfter: route().kind === 'patient' ? 'heading' : 'open:' + p.patientId,
        submit: function (by) {
          return api('api/pages/' + encodeURIComponent(tp.pageId) + '/ack', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ by: by }),
          }).then(function (r) {
            if (r.status !== 200)
              return r.body.errors?.join('; ') || r.body.error || 'Not acknowledged (HTTP ' + r.status + ').';
            var a = r.body.page.ack;
            if (!r.body.changed) return 'Already acknowledged by ' + a.by + ' at ' + when(a.at) + '.';
            announce('Acknowledged by ' + a.by + ' at ' + when(a.at) + '.');
            return null;
          });
        },
      },
      button,
    );
  }

  // One whose stored item cannot be read is ended the same way (the API answers 200 with "silence": null); either
  // answers "changed": false when it had ended already (ended by someone else meanwhile, or over).
  function openEndSilence(silenceId, summary, button) {
    openNameDialog(
      {
        title: 'End silence',
        summary: summary,
        label: 'Your name (recorded with the end of the silence)',
        confirm: 'End silence',
        focusAfter: route().kind === 'patient' ? 'heading' : 'silence-team',
        submit: function (by) {
          return api('api/silences/' + encodeURIComponent(silenceId) + '/end', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ by: by }),
          }).then(function (r) {
            if (r.status !== 200)
              return r.body.errors?.join('; ') || r.body.error || 'Not ended (HTTP ' + r.status + ').';
            announce(r.body.changed === false ? 'The silence had already ended.' : 'Silence ended by ' + by + '.');
            return null;
          });
        },
      },
      button,
    );
  }

  function openedBy(button, fallback) {
    state.opener = button || null;
    state.returnFocus = button ? button.getAttribute('data-key') : null;
    state.returnFallback = fallback;
  }

  function closeAck() {
    if (dialog.open) dialog.close();
  }
  // To the button that opened the dialog; when it has gone meanwhile (the page acknowledged on another board, a
  // newer page), to its patient: until 2026-12-05 the focus went to the first patient of the list.
  // The button itself while it is on the board (updates keep it in place): a patient's page has an Acknowledge button
  // on its card and one in its pages, with one key, and until 2026-12-05 the focus went back to the card's.
  function restoreFocus(key) {
    if (!key) return;
    var at = function (k) {
      return k ? main.querySelector('[data-key="' + CSS.escape(k) + '"]') : null;
    };
    var opener = state.opener;
    var target = /** @type {HTMLElement} */ (
      (opener?.isConnected && opener.getAttribute('data-key') === key ? opener : null) ||
        at(key) ||
        at(state.returnFallback) ||
        main.querySelector('h2[tabindex], h3 a') ||
        main
    );
    target.focus();
  }
  dialog.addEventListener('close', function () {
    state.nameAction = null;
    restoreFocus(state.returnFocus);
  });
  document.getElementById('ack-cancel').addEventListener('click', closeAck);
  ackForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var action = state.nameAction;
    var by = ackName.value.trim();
    if (!action) return closeAck();
    if (!by) {
      ackError.textContent = 'Type your name: it is recorded.';
      ackName.focus();
      return;
    }
    ackConfirm.disabled = true;
    action
      .submit(by)
      .then(function (error) {
        ackConfirm.disabled = false;
        if (error) {
          ackError.textContent = error;
          refresh();
          return;
        }
        // The button is gone once done: focus goes back to the patient.
        state.returnFocus = action.focusAfter;
        closeAck();
        refresh();
      })
      .catch(function () {
        ackConfirm.disabled = false;
        if (!state.authFailed) ackError.textContent = 'The server did not answer; nothing was recorded. Try again.';
      });
  });

  function openSilence(scope, button) {
    state.silenceFor = scope;
    openedBy(button, route().kind === 'patient' ? 'heading' : scope.team ? 'silence-team' : 'open:' + scope.patientId);
    var paging = state.paging;
    var from = paging ? paging.unsilenceableFromGrade : 4;
    silenceRule.textContent =
      'A silence holds pages below grade ' +
      from +
      ' (and technical alerts) until it ends; they are sent then if still ' +
      'unanswered. Pages of grade ' +
      from +
      (from < 4 ? ' and above' : '') +
      ' are never held: they always go out.';
    if (scope.team) {
      silenceScope.textContent = 'Every page to one team (for example during a handover or a drill).';
      silenceTeamRow.hidden = false;
      silenceTeam.textContent = '';
      (paging?.teams || Object.keys(TEAM)).forEach(function (t) {
        silenceTeam.appendChild(h('option', { value: t, text: cap(teamName(t)) }));
      });
    } else {
      silenceScope.textContent = 'Pages about ' + scope.label + ' (for example during transport).';
      silenceTeamRow.hidden = true;
    }
    silenceError.textContent = '';
    silenceReason.value = '';
    silenceName.value = '';
    silenceConfirm.disabled = false;
    silenceDialog.showModal();
    (scope.team ? silenceTeam : silenceMinutes).focus();
  }
  silenceDialog.addEventListener('close', function () {
    state.silenceFor = null;
    restoreFocus(state.returnFocus);
  });
  document.getElementById('silence-cancel').addEventListener('click', function () {
    silenceDialog.close();
  });
  silenceForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var scope = state.silenceFor;
    if (!scope) return silenceDialog.close();
    var by = silenceName.value.trim();
    var reason = silenceReason.value.trim();
    if (!reason) {
      silenceError.textContent = 'Give a reason: it is shown on the board and recorded.';
      silenceReason.focus();
      return;
    }
    if (!by) {
      silenceError.textContent = 'Type your name: it is recorded.';
      silenceName.focus();
      return;
    }
    var body = { minutes: Number(silenceMinutes.value), reason: reason, by: by };
    if (scope.team) body.team = silenceTeam.value;
    else body.patientId = scope.patientId;
    silenceConfirm.disabled = true;
    api('api/silences', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
      .then(function (r) {
        silenceConfirm.disabled = false;
        if (r.status !== 201) {
          silenceError.textContent =
            r.body.errors?.join('; ') || r.body.error || 'Not silenced (HTTP ' + r.status + ').';
          return;
        }
        announce(silenceText(r.body.silence) + '.');
        silenceDialog.close();
        refresh();
      })
      .catch(function () {
        silenceConfirm.disabled = false;
        if (!state.authFailed) silenceError.textContent = 'The server did not answer; nothing was recorded. Try again.';
      });
  });

  function openMonitoring(p, action, button) {
    state.monitoringFor = { patientId: p.patientId, action: action };
    openedBy(button, route().kind === 'patient' ? 'heading' : 'open:' + p.patientId);
    var end = action === 'end';
    monitoringTitle.textContent = end ? 'End monitoring' : 'Resume monitoring';
    putText(
      monitoringSummary,
      end
        ? 'End the monitoring of ' + about(p) + ': a discharge, or a transfer out of the program\u2019s care.'
        : 'Re-admit ' +
            about(p) +
            ' (monitoring ended (' +
            p.monitoringEnded.reason +
            ') ' +
            when(p.monitoringEnded.at) +
            ').',
    );
    monitoringRule.textContent = end
      ? 'The no-data watch of this patient stops and a no-data alert in force is closed; grading and pages of grade ' +
        'changes go on. Resume monitoring at a re-admission.'
      : 'The no-data watch starts again from now: if the monitor sends nothing, the bedside team is paged.';
    monitoringReasonRow.hidden = !end;
    monitoringReason.value = 'discharged';
    monitoringName.value = '';
    monitoringConfirm.textContent = end ? 'End monitoring' : 'Resume monitoring';
    monitoringError.textContent = '';
    monitoringConfirm.disabled = false;
    monitoringDialog.showModal();
    (end ? monitoringReason : monitoringName).focus();
  }
  monitoringDialog.addEventListener('close', function () {
    state.monitoringFor = null;
    restoreFocus(state.returnFocus);
  });
  document.getElementById('monitoring-cancel').addEventListener('click', function () {
    monitoringDialog.close();
  });
  monitoringForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var m = state.monitoringFor;
    if (!m) return monitoringDialog.close();
    var end = m.action === 'end';
    var by = monitoringName.value.trim();
    if (!by) {
      monitoringError.textContent = 'Type your name: it is recorded.';
      monitoringName.focus();
      return;
    }
    monitoringConfirm.disabled = true;
    api('api/patients/' + encodeURIComponent(m.patientId) + '/monitoring/' + m.action, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(end ? { reason: monitoringReason.value, by: by } : { by: by }),
    })
      .then(function (r) {
        monitoringConfirm.disabled = false;
        if (r.status !== 202) {
          monitoringError.textContent =
            r.body.errors?.join('; ') ||
            r.body.error ||
            (end ? 'Not ended' : 'Not resumed') + ' (HTTP ' + r.status + ').';
          return;
        }
        announce(
          end
            ? 'Monitoring of patient ' + m.patientId + ' ended (' + monitoringReason.value + ').'
            : 'Monitoring of patient ' + m.patientId + ' resumed.',
        );
        // The button changes once the message is graded: focus goes back to the patient.
        state.returnFocus = route().kind === 'patient' ? 'heading' : 'open:' + m.patientId;
        monitoringDialog.close();
        refresh();
      })
      .catch(function () {
        monitoringConfirm.disabled = false;
        if (!state.authFailed)
          monitoringError.textContent = 'The server did not answer; nothing was recorded. Try again.';
      });
  });

  // ----------------------------------------------------------------------------------------- routing and data
  function route() {
    var m = location.hash.match(/^#\/patient\/(.+)$/);
    return m ? { kind: 'patient', id: unescapeId(m[1]) } : { kind: 'list' };
  }
  // An address cut short ("%3" of "%3A") is read as written (no such patient, said so): decodeURIComponent throws,
  // and a throw here left the board blank for good.
  function unescapeId(s) {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  }

  // The delivery watch's exhausted ladders (alerts with a page), grouped by the grade change or alert they are
  // about: "patient P-0042 CRS 3, hematology and ICU: phone the team (since 14:05)".
  function unanswered(alerts) {
    var groups = [],
      byId = {};
    alerts.forEach(function (a) {
      if (!a.page) return;
      var g = byId[a.page.notificationId];
      if (!g) {
        g = byId[a.page.notificationId] = { page: a.page, teams: [], since: a.since };
        groups.push(g);
      }
      g.teams.push(a.page.team);
      if (a.since < g.since) g.since = a.since;
    });
    return groups.map(function (g) {
      var p = g.page;
      var what =
        p.subject === 'crs' || p.subject === 'icans'
          ? condName(p.subject) + ' ' + p.grade
          : p.subject === 'spo2'
            ? 'SpO2 warning'
            : 'no-data alert';
      var order = Object.keys(TEAM);
      var names = g.teams
        .sort(function (a, b) {
          return order.indexOf(a) - order.indexOf(b);
        })
        .map(teamName);
      var teams = names.length > 1 ? names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1] : names[0];
      var who = p.patientId.indexOf('ward ') === 0 ? p.patientId : 'patient ' + p.patientId;
      return who + ' ' + what + ', ' + teams + ': phone the team (since ' + when(g.since) + ')';
    });
  }

  // The paging path's own health (a lane stuck, records parked, the pager late): a banner above everything.
  function refreshDelivery() {
    api('api/outbox')
      .then(function (r) {
        var alerts = r.body?.alerts || [];
        // The banner is an alert region: drawn again only when what it says changes. It was drawn again at every
        // update of the board (each new reading), and a screen reader said it again each time.
        var sig = JSON.stringify([
          siteZone, // its times are in the site's zone, known once a view has answered
          alerts.map(function (a) {
            return [a.text, a.since];
          }),
        ]);
        if (deliveryEl.getAttribute('data-sig') === sig) return;
        deliveryEl.setAttribute('data-sig', sig);
        deliveryEl.textContent = '';
        deliveryEl.hidden = alerts.length === 0;
        if (alerts.length === 0) return;
        // Ladders nobody answered first (a patient, not the server): one line per grade change, with its teams.
        unanswered(alerts).forEach(function (line) {
          deliveryEl.appendChild(
            h('p', { class: 'unanswered' }, [h('strong', { text: 'Nobody acknowledged: ' }), line]),
          );
        });
        var technical = alerts.filter(function (a) {
          return !a.page;
        });
        if (technical.length === 0) return;
        deliveryEl.appendChild(h('strong', { text: 'Paging path alert (technical, not a grade): ' }));
        deliveryEl.appendChild(
          h(
            'ul',
            {},
            technical.map(function (a) {
              return h('li', { text: a.text + ' (since ' + when(a.since) + ')' });
            }),
          ),
        );
      })
      .catch(function () {
        /* the status line says the server is unreachable */
      });
  }

  var inFlight = false,
    again = false,
    timer = null;
  function refresh() {
    refreshDelivery();
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    var view = (state.view = route());
    var path =
      view.kind === 'patient'
        ? 'api/patients/' + encodeURIComponent(view.id) + '?hours=' + state.hours
        : 'api/patients?offset=' + state.listOffset + '&limit=' + LIST_PAGE;
    api(path)
      .then(function (r) {
        if (view.kind !== route().kind || (view.kind === 'patient' && view.id !== route().id)) return; // navigated away meanwhile
        // Only a view carries the server's time: after a 404 ("no such patient") or a failure the clock, zone and
        // "data as of" stay those of the last view, and a failure is said in the status line.
        state.serverError = r.status === 200 || r.status === 404 ? null : r.status;
        if (state.serverError) return setStatus();
        if (r.status === 200) {
          state.serverOffset = Date.parse(r.body.serverTime) - Date.now();
          state.lastData = r.body;
          setZone(r.body.timeZone);
          window.CrsChart.setDeviceNames(r.body.oxygenDeviceNames);
          setUnbroken(r.body.unbroken);
          if (r.body.paging) state.paging = r.body.paging;
        }
        // A notice in place of a view (no such patient, a state that cannot be read) is drawn once: drawn again at
        // each update, it took the focus from its link (back to the body) and its alert was said again.
        var notice =
          r.status === 404
            ? '404 ' + view.id
            : view.kind === 'patient' && r.body.unreadable
              ? 'unreadable ' + view.id + ' ' + r.body.unreadable.reason
              : null;
        if (notice !== null && main.getAttribute('data-notice') === notice) return setStatus();
        if (notice !== null) main.setAttribute('data-notice', notice);
        else main.removeAttribute('data-notice');
        if (r.status === 404) {
          main.removeAttribute('data-patient');
          main.textContent = '';
          main.appendChild(
            h('div', { class: 'notice' }, [
              h('p', { text: 'No patient ' + view.id + '.' }),
              h('a', { href: '#/', text: '← All patients' }),
            ]),
          );
        } else if (view.kind === 'patient' && r.body.unreadable) {
          // Its stored state cannot be read: said, with its audit trail, instead of a card drawn from nothing.
          main.removeAttribute('data-patient');
          main.textContent = '';
          main.appendChild(
            h('div', { class: 'notice', role: 'alert' }, [
              h('p', {
                text:
                  'Patient ' +
                  view.id +
                  ': its stored state cannot be read (' +
                  r.body.unreadable.reason +
                  '). An operator must mend or delete its row; its pages are kept.',
              }),
              h('p', {}, [
                'Audit trail: ',
                h('a', {
                  href: 'api/patients/' + encodeURIComponent(view.id) + '/audit?format=csv',
                  download: '',
                  text: 'CSV',
                }),
                ' · ',
                h('a', {
                  href: 'api/patients/' + encodeURIComponent(view.id) + '/audit?format=ndjson',
                  download: '',
                  text: 'NDJSON',
                }),
              ]),
              h('a', { href: '#/', text: '← All patients' }),
            ]),
          );
        } else if (view.kind === 'patient') renderPatient(r.body);
        else renderList(r.body);
        setStatus();
      })
      .catch(function () {
        setStatus();
      })
      // Whatever happened, the next refresh is let through: a view that failed to draw never stops the board.
      .then(done, done);
    function done() {
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  function scheduleRefresh(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay === undefined ? 250 : delay);
  }

  window.addEventListener('hashchange', function () {
    main.removeAttribute('data-patient');
    main.removeAttribute('data-notice');
    var r = route();
    if (r.kind === 'list') {
      document.title = 'CRS / ICANS on-call board';
      main.textContent = '';
    }
    refresh();
    main.focus({ preventScroll: false });
  });

  // A server dead or hung tells nobody (docs/safety.md H15): the board says so, loudly. The server pings the live
  // stream (every 15 s, its period in each ping); a stream silent for 3 pings is a hung server, let go and opened
  // again (the status line then says Reconnecting…); nothing heard (no ping, event or answer) for 4 pings raises the
  // banner: since when, that pages may not be going out, and the downtime procedure. It goes when the server answers.
  var contact = { at: performance.now(), wall: Date.now(), pingMs: 15000 };
  function heard() {
    contact.at = performance.now();
    contact.wall = Date.now();
    if (!lostEl.hidden) {
      lostEl.hidden = true;
      lostEl.textContent = '';
    }
  }
  function checkContact() {
    var quiet = performance.now() - contact.at;
    if (state.live && source && quiet > 3 * contact.pingMs) {
      source.close();
      source = null;
      state.live = false;
      setStatus();
      connect();
    }
    if (quiet > 4 * contact.pingMs && lostEl.hidden) {
      lostEl.textContent = '';
      lostEl.appendChild(
        h('strong', {
          text: 'The server has not answered since ' + siteTime(contact.wall + state.serverOffset) + '.',
        }),
      );
      lostEl.appendChild(
        document.createTextNode(
          ' Pages may not be going out and this board is not current. Follow the downtime procedure: phone the ' +
            'teams about every patient at risk, and call the operator.',
        ),
      );
      lostEl.hidden = false;
    }
    setTimeout(checkContact, Math.min(1000, contact.pingMs / 4));
  }

  var source = null;
  function connect() {
    var es = (source = new EventSource('api/events'));
    es.onopen = function () {
      if (es !== source) return;
      heard();
      state.live = true;
      setStatus();
      scheduleRefresh(0);
    };
    es.onerror = function () {
      if (es !== source) return;
      state.live = false;
      setStatus();
      if (es.readyState === EventSource.CLOSED) {
        // refused (no key, or full): try again later
        source = null;
        setTimeout(function () {
          refresh();
          connect();
        }, 5000);
      }
    };
    // Every event is word from the server; one from a stream let go is not.
    function on(name, f) {
      es.addEventListener(name, function (e) {
        if (es !== source) return;
        heard();
        f(e);
      });
    }
    on('ping', function (e) {
      var every = JSON.parse(e.data).everyMs;
      if (typeof every === 'number' && every > 0) contact.pingMs = every;
    });
    on('patients', function () {
      scheduleRefresh();
    });
    on('pages', function () {
      scheduleRefresh();
    });
    on('silences', function () {
      scheduleRefresh();
    });
    on('ack', function () {
      scheduleRefresh();
    });
    on('lanes', function () {
      refreshDelivery();
    });
    on('page', function (e) {
      var d = JSON.parse(e.data);
      state.flash[d.patientId] = true;
      setTimeout(function () {
        delete state.flash[d.patientId];
        scheduleRefresh();
      }, 4000);
      var what = d.technical
        ? 'technical alert (not a grade)'
        : condName(d.subject) + ' grade ' + d.grade + ' ' + d.kind;
      announce('Paged ' + d.role + ' (' + teamName(d.team) + '): ' + what + ', patient ' + d.patientId + '.');
      scheduleRefresh(100);
    });
  }

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (route().kind === 'patient') refresh();
    }, 200);
  });
  setInterval(tickAges, 15000);
  setInterval(function () {
    if (!state.live) refresh();
  }, 30000); // in case the event stream is down
  refresh();
  connect();
  checkContact();
})();
