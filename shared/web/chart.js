// The patient timeline as inline SVG, written by hand: grade bands (CRS, ICANS), temperature, blood pressure,
// SpO2, oxygen device, vasopressors, medications and ICE scores on one time axis. No library, no network.
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var GRADE_FILL = ['#e3f1e4', '#fff4b8', '#ffd6a5', '#ffb3b3', '#5b1a7a'];
  var GRADE_INK = ['#1b4d1f', '#4d3d00', '#6b2f00', '#6e0000', '#ffffff'];
  var O2_SHORT = {
    room_air: 'room air',
    blow_by: 'blow-by',
    nasal_cannula: 'NC',
    high_flow_nasal_cannula: 'HFNC',
    simple_mask: 'mask',
    non_rebreather: 'NRB',
    venturi: 'Venturi',
    cpap: 'CPAP',
    bipap: 'BiPAP',
    mechanical_ventilation: 'ventilated',
  };
  // The domain's names for the devices (reasons and pages say them so), sent by the server with every response.
  var O2_NAME = {};
  function setDeviceNames(names) {
    if (names) O2_NAME = names;
  }
  var MED_LETTER = {
    tocilizumab: 'T',
    dexamethasone: 'D',
    methylprednisolone: 'M',
    hydrocortisone: 'H',
    acetaminophen: 'A',
    ibuprofen: 'I',
    siltuximab: 'S',
    anakinra: 'K',
  };
  var COLORS = { temp: '#c2410c', sys: '#991b1b', dia: '#1d4ed8', map: '#6b21a8', spo2: '#0f766e' };

  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function titled(node, text) {
    node.appendChild(el('title', {}, text));
    return node;
  }

  function o2Text(o) {
    var s = O2_NAME[o.device] || o.device;
    if (o.flowLpm !== undefined) s += ' ' + o.flowLpm + ' L/min';
    if (o.fio2 !== undefined) s += ' FiO2 ' + o.fio2;
    if (o.forComfort) s += ' (for comfort)';
    return s;
  }
  function o2Short(o) {
    var s = O2_SHORT[o.device] || o.device;
    if (o.flowLpm !== undefined) s += ' ' + o.flowLpm + ' L';
    return s;
  }
  function pressorText(list) {
    return list
      .map(function (v) {
        return v.drug + ' ' + v.dose + ' ' + v.unit;
      })
      .join(' + ');
  }

  /** Step segments [{from, to, value}] from change points [{t, value}], merged when the value repeats. */
  function steps(changes, end, same) {
    var out = [];
    for (var i = 0; i < changes.length; i++) {
      var c = changes[i];
      var last = out[out.length - 1];
      if (last && same(last.value, c.value)) continue;
      if (last) last.to = c.t;
      out.push({ from: c.t, to: end, value: c.value });
    }
    return out;
  }

  function niceStep(spanMs, maxTicks) {
    var MIN = 60000,
      H = 60 * MIN;
    var options = [15 * MIN, 30 * MIN, H, 2 * H, 3 * H, 6 * H, 12 * H, 24 * H, 48 * H];
    for (var i = 0; i < options.length; i++) if (spanMs / options[i] <= maxTicks) return options[i];
    return options[options.length - 1];
  }

  /**
   * The time axis's ticks from start to end (ms), every `step` of the site's wall clock: [{t, time, day}], `day` the
   * date written under the first tick of a local day, its midnight (steps of an hour or more), else ''. Each tick is
   * placed from the wall-clock time it shows, with the offset at that time (fmt.offsetMinutes), so the ticks stay on
   * whole local hours on both sides of a daylight-saving change: a time the change skips has no tick, one it repeats
   * two. Until 2026-12-07 every tick was placed with the offset at the chart's start: after a change inside the chart,
   * 6-hourly ticks fell on 05:00, 11:00, ... and local midnight lost its date.
   */
  function axisTicks(start, end, step, fmt) {
    var MIN = 60000,
      H = 60 * MIN,
      DAY = 24 * H;
    function wallOf(t) {
      return t + fmt.offsetMinutes(t) * MIN;
    }
    var out = [];
    // From 3 hours of wall clock before the start: after a change back, the repeated hour shows earlier times.
    for (var w = Math.ceil((wallOf(start) - 3 * H) / step) * step; ; w += step) {
      // The instants that show wall time w: with the offset of a day before it or of a day after (one change at most).
      var a = w - fmt.offsetMinutes(w - DAY) * MIN;
      var b = w - fmt.offsetMinutes(w + DAY) * MIN;
      // Not "> end": a NaN (a time the board could not read) ends the loop too, with no ticks.
      if (!(Math.min(a, b) <= end)) break;
      [Math.min(a, b), Math.max(a, b)].forEach(function (t, i) {
        if ((i === 0 || a !== b) && t >= start && t <= end && wallOf(t) === w) out.push(t);
      });
    }
    out.sort(function (x, y) {
      return x - y;
    });
    return out.map(function (t, i) {
      var time = fmt.time(t);
      var newDay = time === '00:00' || (i > 0 && fmt.day(t) !== fmt.day(out[i - 1]));
      return { t: t, time: time, day: step >= H && newDay ? fmt.day(t) : '' };
    });
  }

  /**
   * Draws the timeline into `container` (replacing its content). tl: {from, to, feverThresholdC, hypotension,
   * points}; fmt: {time(ms) -> "14:05", dateTime(ms) -> text, day(ms) -> text, offsetMinutes(ms) -> the site's offset
   * from UTC}. Returns the SVG element.
   */
  function render(container, tl, fmt) {
    container.textContent = '';
    var pts = tl.points.map(function (p) {
      return Object.assign({ ms: Date.parse(p.t), clockMs: Date.parse(p.clock) }, p);
    });
    var end = Date.parse(tl.to);
    var start = Date.parse(tl.from);
    if (pts.length > 0)
      start = Math.max(
        start,
        Math.min.apply(
          null,
          pts.map(function (p) {
            return p.ms;
          }),
        ),
      );
    if (!(end > start)) end = start + 3600000;
    var pad = (end - start) * 0.02;
    start -= pad;
    var domainEnd = end + pad;

    var width = Math.max(320, Math.floor(container.clientWidth || 800));
    var left = 76,
      right = 14;
    var plotW = width - left - right;
    function sx(t) {
      return left + ((t - start) / (domainEnd - start)) * plotW;
    }

    var byClock = pts.slice().sort(function (a, b) {
      return a.clockMs - b.clockMs;
    });
    var crsSteps = steps(
      byClock.map(function (p) {
        return { t: p.clockMs, value: p.crs };
      }),
      end,
      function (a, b) {
        return a === b;
      },
    );
    var icansSteps = steps(
      byClock.map(function (p) {
        return { t: p.clockMs, value: p.icans };
      }),
      end,
      function (a, b) {
        return a === b;
      },
    );
    var o2Steps = steps(
      pts
        .filter(function (p) {
          return p.oxygen;
        })
        .map(function (p) {
          return { t: p.ms, value: p.oxygen };
        }),
      end,
      function (a, b) {
        return o2Text(a) === o2Text(b);
      },
    );
    var pressorSteps = steps(
      pts
        .filter(function (p) {
          return p.vasopressors;
        })
        .map(function (p) {
          return {
            t: p.ms,
            value: p.vasopressors.filter(function (v) {
              return v.dose > 0;
            }),
          };
        }),
      end,
      function (a, b) {
        return pressorText(a) === pressorText(b);
      },
    );
    var meds = [];
    pts.forEach(function (p) {
      (p.medications || []).forEach(function (m) {
        meds.push({ t: p.ms, drug: m.drug, doseMg: m.doseMg });
      });
    });
    var ice = pts.filter(function (p) {
      return p.neuro && p.neuro.iceScore !== undefined;
    });

    function series(key) {
      return pts
        .filter(function (p) {
          return p.vitals && typeof p.vitals[key] === 'number';
        })
        .map(function (p) {
          return { t: p.ms, v: p.vitals[key] };
        });
    }
    var temp = series('temperatureC'),
      sys = series('systolicBP'),
      dia = series('diastolicBP'),
      map = series('meanArterialPressure');
    var spo2 = series('spo2');
    function extent(list, lo, hi, margin) {
      list.forEach(function (s) {
        s.forEach(function (d) {
          lo = Math.min(lo, d.v - margin);
          hi = Math.max(hi, d.v + margin);
        });
      });
      return [lo, hi];
    }

    var rows = [
      { kind: 'band', label: 'CRS', h: 24, segs: crsSteps, grade: true },
      { kind: 'band', label: 'ICANS', h: 24, segs: icansSteps, grade: true },
      {
        kind: 'line',
        label: 'Temp °C',
        h: 110,
        series: [{ d: temp, c: COLORS.temp, name: 'temperature' }],
        dom: extent([temp], 35.5, 40.5, 0.3),
        thr: [{ v: tl.feverThresholdC, t: 'fever ' + tl.feverThresholdC + ' °C' }],
      },
      {
        kind: 'line',
        label: 'BP mmHg',
        h: 150,
        series: [
          { d: sys, c: COLORS.sys, name: 'systolic' },
          { d: dia, c: COLORS.dia, name: 'diastolic' },
          { d: map, c: COLORS.map, name: 'MAP', dash: '4 3' },
        ],
        dom: extent([sys, dia, map], 30, 180, 5),
        thr: [
          { v: tl.hypotension.systolicBelow, t: 'systolic < ' + tl.hypotension.systolicBelow },
          { v: tl.hypotension.mapBelow, t: 'MAP < ' + tl.hypotension.mapBelow },
        ],
      },
      {
        kind: 'line',
        label: 'SpO2 %',
        h: 80,
        series: [{ d: spo2, c: COLORS.spo2, name: 'SpO2' }],
        dom: extent([spo2], 85, 100, 1),
        thr: [],
      },
      { kind: 'band', label: 'Oxygen', h: 24, segs: o2Steps, o2: true },
      { kind: 'band', label: 'Pressors', h: 24, segs: pressorSteps, pressor: true },
      { kind: 'marks', label: 'Meds', h: 24 },
      { kind: 'ice', label: 'ICE score', h: 24 },
    ];
    var gap = 6,
      axisH = 30;
    var height =
      rows.reduce(function (n, r) {
        return n + r.h + gap;
      }, 0) + axisH;

    var svg = el('svg', {
      width: width,
      height: height,
      viewBox: '0 0 ' + width + ' ' + height,
      role: 'img',
      'aria-label':
        'Timeline from ' +
        fmt.dateTime(start + pad) +
        ' to ' +
        fmt.dateTime(end) +
        ': ' +
        pts.length +
        ' observations. The same data is in the table below.',
    });

    // Time grid and axis.
    var step = niceStep(domainEnd - start, Math.max(2, Math.floor(plotW / 80)));
    var axis = el('g', { class: 'axis' });
    axisTicks(start, domainEnd, step, fmt).forEach(function (k) {
      var x = sx(k.t);
      axis.appendChild(el('line', { class: 'grid', x1: x, x2: x, y1: 0, y2: height - axisH }));
      axis.appendChild(el('text', { x: x, y: height - axisH + 14, 'text-anchor': 'middle' }, k.time));
      if (k.day) axis.appendChild(el('text', { x: x, y: height - axisH + 27, 'text-anchor': 'middle' }, k.day));
    });
    svg.appendChild(axis);

    var y = 0;
    rows.forEach(function (r) {
      var g = el('g', {});
      g.appendChild(el('text', { class: 'rowlbl', x: 4, y: y + r.h / 2 + 4 }, r.label));
      g.appendChild(el('rect', { x: left, y: y, width: plotW, height: r.h, fill: 'none', stroke: '#d0d0d0' }));
      if (r.kind === 'band') drawBand(g, r, y);
      else if (r.kind === 'line') drawLines(g, r, y);
      else if (r.kind === 'marks') drawMeds(g, r, y);
      else drawIce(g, r, y);
      svg.appendChild(g);
      y += r.h + gap;
    });
    container.appendChild(svg);
    return svg;

    function drawBand(g, r, top) {
      r.segs.forEach(function (s) {
        var x1 = sx(s.from),
          x2 = sx(s.to),
          w = Math.max(1, x2 - x1);
        var fill, ink, label, title;
        if (r.grade) {
          fill = GRADE_FILL[s.value];
          ink = GRADE_INK[s.value];
          label = String(s.value);
          title = r.label + ' grade ' + s.value + ' from ' + fmt.dateTime(s.from);
        } else if (r.o2) {
          var none = s.value.device === 'room_air' || s.value.forComfort;
          fill = none ? '#f4f4f4' : '#cfe3ff';
          ink = '#12305c';
          label = o2Short(s.value);
          title = o2Text(s.value) + ' from ' + fmt.dateTime(s.from);
        } else {
          if (s.value.length === 0) return;
          fill = '#f6c1c1';
          ink = '#5c0000';
          label = pressorText(s.value);
          title = label + ' from ' + fmt.dateTime(s.from);
        }
        g.appendChild(titled(el('rect', { x: x1, y: top + 1, width: w, height: r.h - 2, fill: fill }), title));
        var maxChars = Math.floor((w - 6) / 6);
        if (maxChars >= 1) {
          var text =
            label.length > maxChars ? label.slice(0, Math.max(1, maxChars - 1)) + (maxChars > 2 ? '…' : '') : label;
          g.appendChild(el('text', { class: 'seg-lbl', x: x1 + 3, y: top + r.h / 2 + 4, fill: ink }, text));
        }
      });
    }

    function drawLines(g, r, top) {
      var lo = r.dom[0],
        hi = r.dom[1];
      function sy(v) {
        return top + r.h - 4 - ((v - lo) / (hi - lo)) * (r.h - 8);
      }
      [lo, hi].forEach(function (v) {
        g.appendChild(
          el('text', { class: 'lbl', x: left - 4, y: sy(v) + 4, 'text-anchor': 'end' }, String(Math.round(v))),
        );
      });
      r.thr.forEach(function (th) {
        if (th.v < lo || th.v > hi) return;
        g.appendChild(el('line', { class: 'thr', x1: left, x2: left + plotW, y1: sy(th.v), y2: sy(th.v) }));
        g.appendChild(
          el('text', { class: 'thr-lbl', x: left + plotW - 4, y: sy(th.v) - 3, 'text-anchor': 'end' }, th.t),
        );
      });
      r.series.forEach(function (s) {
        if (s.d.length === 0) return;
        g.appendChild(
          el('polyline', {
            points: s.d
              .map(function (d) {
                return sx(d.t).toFixed(1) + ',' + sy(d.v).toFixed(1);
              })
              .join(' '),
            fill: 'none',
            stroke: s.c,
            'stroke-width': 1.8,
            'stroke-dasharray': s.dash,
          }),
        );
        s.d.forEach(function (d) {
          g.appendChild(
            titled(
              el('circle', { cx: sx(d.t), cy: sy(d.v), r: 2.6, fill: s.c }),
              s.name + ' ' + d.v + ' at ' + fmt.dateTime(d.t),
            ),
          );
        });
      });
    }

    function drawMeds(g, r, top) {
      meds.forEach(function (m) {
        var x = sx(m.t);
        var letter = MED_LETTER[m.drug] || '?';
        var mark = el('g', {});
        mark.appendChild(
          el('path', {
            d: 'M' + (x - 7) + ' ' + (top + 3) + 'h14l-7 ' + (r.h - 6) + 'z',
            fill: m.drug === 'tocilizumab' ? '#0b57d0' : '#6b7280',
          }),
        );
        mark.appendChild(
          el(
            'text',
            { x: x, y: top + 13, 'text-anchor': 'middle', fill: '#fff', 'font-size': 10, 'font-weight': 700 },
            letter,
          ),
        );
        g.appendChild(
          titled(mark, m.drug + (m.doseMg !== undefined ? ' ' + m.doseMg + ' mg' : '') + ' at ' + fmt.dateTime(m.t)),
        );
      });
    }

    function drawIce(g, r, top) {
      ice.forEach(function (p) {
        var s = p.neuro.iceScore;
        var grade = s >= 10 ? 0 : s >= 7 ? 1 : s >= 3 ? 2 : 3;
        var x = sx(p.ms);
        g.appendChild(
          titled(
            el('rect', { x: x - 9, y: top + 3, width: 18, height: r.h - 6, rx: 3, fill: GRADE_FILL[grade] }),
            'ICE score ' + s + '/10 at ' + fmt.dateTime(p.ms),
          ),
        );
        g.appendChild(
          el(
            'text',
            { x: x, y: top + r.h / 2 + 4, 'text-anchor': 'middle', 'font-size': 11, fill: GRADE_INK[grade] },
            String(s),
          ),
        );
      });
    }
  }

  window.CrsChart = {
    render: render,
    axisTicks: axisTicks,
    o2Text: o2Text,
    setDeviceNames: setDeviceNames,
    pressorText: pressorText,
    COLORS: COLORS,
  };
})();
