// The board's JSON views: built from the stored state with the domain's own functions (gradeCrs, gradeIcans,
// dayPostInfusion), so the board shows exactly what the engine decided; nothing is re-derived in the browser.
import type { BoardQueries, PageRecord, PatientRecord } from '../adapters/embedded/board.ts';
import type { TimelinePoint } from '../adapters/embedded/store.ts';
import type { GradingConfig } from '../domain/config.ts';
import { gradeCrs, gradeIcans, hypotensionThresholds } from '../domain/grading.ts';
import { dayPostInfusion } from '../domain/page.ts';
import type { VitalFields } from '../domain/state.ts';
import { HOUR, iso } from '../domain/time.ts';

export interface Measured<T> {
  value: T;
  at: string;
}

export interface PageView {
  notificationId: string;
  patientId: string;
  condition: 'crs' | 'icans';
  kind: 'escalation' | 'de-escalation';
  fromGrade: number;
  toGrade: number;
  teams: string[];
  /** Patient clock when the grade changed. */
  at: string;
  bed: string | null;
  summary: string;
  reasons: string[];
  actions: string[];
  triggeredAt: string;
  deliveredAt: string | null;
  deliveredTo: string[];
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  acknowledgedVia: string | null;
  /** A later open page of the same condition for this patient. */
  supersededBy: string | null;
}

export interface PatientView {
  patientId: string;
  bed: string | null;
  ward: string | null;
  therapy: string | null;
  product: string | null;
  infusedAt: string | null;
  dayPostInfusion: number | null;
  /** The patient clock: the grades are as of this time. */
  clock: string;
  updatedAt: string;
  scheme: string;
  crs: { grade: number; reasons: string[] };
  icans: { grade: number; reasons: string[] };
  vitals: Partial<Record<keyof VitalFields, Measured<number>>>;
  lastVitalsAt: string | null;
  oxygen: (Measured<string> & { flowLpm: number | null; fio2: number | null; forComfort: boolean }) | null;
  vasopressors: Measured<{ drug: string; dose: number; unit: string }[]> | null;
  neuro: (Measured<string> & { iceScore: number | null }) | null;
  /** What the board marks as fever or low blood pressure (the patient's own hypotension limits when set). */
  limits: { feverC: number; systolicBelow: number; mapBelow: number };
  openPages: PageView[];
}

export function pageView(p: PageRecord, supersededBy: string | null = null): PageView {
  const n = p.notification;
  return {
    notificationId: n.notificationId,
    patientId: n.patientId,
    condition: n.condition,
    kind: n.kind,
    fromGrade: n.fromGrade,
    toGrade: n.toGrade,
    teams: n.teams,
    at: n.at,
    bed: n.bed,
    summary: n.summary,
    reasons: n.reasons.map((r) => r.text),
    actions: n.actions,
    triggeredAt: p.triggeredAt,
    deliveredAt: p.deliveredAt,
    deliveredTo: p.deliveredTo,
    acknowledgedAt: p.acknowledgedAt,
    acknowledgedBy: p.acknowledgedBy,
    acknowledgedVia: p.acknowledgedVia,
    supersededBy,
  };
}

/** Open pages, newest first, each older one marked as superseded by the newest open page of its condition. */
function openPageViews(open: PageRecord[]): PageView[] {
  const newest = new Map<string, string>();
  for (const p of open) newest.set(p.notification.condition, p.notification.notificationId); // ordered by seq
  return open
    .map((p) => {
      const latest = newest.get(p.notification.condition)!;
      return pageView(p, latest === p.notification.notificationId ? null : latest);
    })
    .reverse();
}

const NEURO_TEXT: Record<string, string> = {
  alert: 'alert',
  awakens_spontaneously: 'awakens spontaneously',
  awakens_to_voice: 'awakens to voice',
  awakens_to_touch: 'awakens to touch',
  unarousable: 'unarousable',
};

export function patientView(rec: PatientRecord, open: PageRecord[], config: GradingConfig): PatientView {
  const s = rec.state;
  const crs = gradeCrs(s, config);
  const icans = gradeIcans(s);
  const vitals: PatientView['vitals'] = {};
  let last = Number.NEGATIVE_INFINITY;
  for (const [k, timed] of Object.entries(s.vitals) as [keyof VitalFields, { v: number; t: number }][]) {
    vitals[k] = { value: timed.v, at: iso(timed.t) };
    last = Math.max(last, timed.t);
  }
  const e = s.enrolment;
  const n = s.neuro;
  return {
    patientId: rec.patientId,
    bed: e.bed?.v ?? null,
    ward: e.ward?.v ?? null,
    therapy: e.therapy?.v ?? null,
    product: e.product?.v ?? null,
    infusedAt: e.infusedAt?.v ?? null,
    dayPostInfusion: dayPostInfusion(s),
    clock: Number.isFinite(s.clock) ? iso(s.clock) : rec.updatedAt,
    updatedAt: rec.updatedAt,
    scheme: config.scheme,
    crs: { grade: crs.grade, reasons: crs.reasons.map((r) => r.text) },
    icans: { grade: icans.grade, reasons: icans.reasons.map((r) => r.text) },
    vitals,
    lastVitalsAt: Number.isFinite(last) ? iso(last) : null,
    oxygen: s.oxygen
      ? {
          value: s.oxygen.v.device,
          at: iso(s.oxygen.t),
          flowLpm: s.oxygen.v.flowLpm ?? null,
          fio2: s.oxygen.v.fio2 ?? null,
          forComfort: s.oxygen.v.forComfort ?? false,
        }
      : null,
    vasopressors: s.vasopressors ? { value: s.vasopressors.v.filter((v) => v.dose > 0), at: iso(s.vasopressors.t) } : null,
    neuro: n
      ? {
          value: n.v.consciousness ? NEURO_TEXT[n.v.consciousness]! : 'not assessed',
          at: iso(n.t),
          iceScore: n.v.iceScore ?? null,
        }
      : null,
    limits: { feverC: config.feverThresholdC, ...hypotensionThresholds(s, config) },
    openPages: openPageViews(open),
  };
}

const severity = (p: PatientView) => Math.max(p.crs.grade, p.icans.grade);

/** Sickest first; then those with pages waiting; then by bed. */
export function sortPatients(list: PatientView[]): PatientView[] {
  return list.sort(
    (a, b) =>
      severity(b) - severity(a) ||
      b.openPages.length - a.openPages.length ||
      (a.bed ?? a.patientId).localeCompare(b.bed ?? b.patientId, 'en', { numeric: true }),
  );
}

export class BoardApi {
  constructor(
    private readonly queries: BoardQueries,
    private readonly config: GradingConfig,
    private readonly now: () => number = Date.now,
  ) {}

  patients() {
    const open = new Map<string, PageRecord[]>();
    for (const p of this.queries.openPages()) {
      const list = open.get(p.notification.patientId) ?? [];
      list.push(p);
      open.set(p.notification.patientId, list);
    }
    const patients = this.queries.patients().map((r) => patientView(r, open.get(r.patientId) ?? [], this.config));
    return { serverTime: iso(this.now()), scheme: this.config.scheme, patients: sortPatients(patients) };
  }

  /** One patient: the card, every page (newest first) and the timeline of the last `hours` of patient time. */
  patient(patientId: string, hours = 72) {
    const rec = this.queries.patient(patientId);
    if (!rec) return undefined;
    const all = this.queries.pagesOf(patientId);
    const open = all.filter((p) => !p.acknowledgedAt);
    const clock = Number.isFinite(rec.state.clock) ? rec.state.clock : this.now();
    const from = clock - hours * HOUR;
    const points = this.queries.timeline(patientId, from).map((p: TimelinePoint) => ({
      t: iso(p.observedAt),
      clock: iso(p.clock),
      messageId: p.messageId,
      crs: p.crs,
      icans: p.icans,
      ...p.data,
    }));
    return {
      serverTime: iso(this.now()),
      patient: patientView(rec, open, this.config),
      pages: all.map((p) => pageView(p)).reverse(),
      timeline: {
        from: iso(from),
        to: iso(clock),
        feverThresholdC: this.config.feverThresholdC,
        hypotension: hypotensionThresholds(rec.state, this.config),
        points,
      },
    };
  }
}
