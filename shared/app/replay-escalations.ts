// `crs replay --escalations`: the pages, their ladders, acknowledgements, silences and technical alerts, run in
// simulated time (the latest time seen in the file), so that a ladder is testable deterministically.
// Besides device messages, the file may hold control lines:
//   {"type":"ack","pageId":"...","by":"Dr A","at":"..."}
//   {"type":"silence","silenceId":"s1","patientId":"P-1"|"team":"icu","from":"...","until":"...","by":"...","reason":"..."}
//   {"type":"end-silence","silenceId":"s1","by":"...","at":"..."}
//   {"type":"advance","to":"..."}          (let time pass with no message)
import type { GradingConfig } from '#domain/config.ts';
import type { OutputEvent } from '#domain/events.ts';
import { feedStatus, PAGE_TEAMS } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { parseTime } from '#domain/time.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { zoneOffsetCheck } from '#domain/typed-time.ts';
import * as z from '#domain/zod.ts';
import type { AuditEvent } from '#ports';
import { checkReplayedLine } from './ingest.ts';
import { MemoryAuditLog, MemoryPageStore } from './memory.ts';
import { Pager } from './pager.ts';
import { ONE_SCOPE } from './silence.ts';
import { Replay } from './replay.ts';
import { planStaleFeeds, type FeedCheck, type InForce } from './stale-feed.ts';

const time = z.iso.datetime({ offset: true, abort: true }).check(...zoneOffsetCheck((v) => quoted(v, SENDER_MOST)));
const Control = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('ack'),
    pageId: z.string().check(z.minLength(1)),
    by: z.string().check(z.minLength(1), z.maxLength(100)),
    at: time,
  }),
  z.strictObject({
    type: z.literal('silence'),
    silenceId: z.string().check(z.minLength(1), z.maxLength(100)),
    patientId: z.optional(z.string()),
    team: z.optional(z.enum(PAGE_TEAMS)),
    from: time,
    until: time,
    by: z.string().check(z.minLength(1), z.maxLength(100)),
    reason: z.string().check(z.maxLength(500)),
  }),
  z.strictObject({
    type: z.literal('end-silence'),
    silenceId: z.string().check(z.minLength(1)),
    by: z.string().check(z.minLength(1), z.maxLength(100)),
    at: time,
  }),
  z.strictObject({ type: z.literal('advance'), to: time }),
]);
type Control = z.infer<typeof Control>;

/** An audit trail entry as a replay event: `event` is the audit type (page, delivery, escalation, ...). */
type AuditOutput = { type: 'audit'; event: AuditEvent['type'] } & Omit<AuditEvent, 'type'>;

export type EscalationEvent = OutputEvent | AuditOutput | { type: 'control-refused'; line: number; error: string };

/** A fixed key: replay's acknowledge links are never used outside the replay. */
const REPLAY_ACK_SECRET = Buffer.alloc(32, 7);

export class EscalatingReplay {
  private readonly replay: Replay;
  private readonly pager: Pager;
  private readonly audited: AuditEvent[] = [];
  private readonly patients = new Set<string>();
  /** The stale-feed alerts in force (shared/app/stale-feed.ts), by patient or ward alert id. */
  private readonly staleAlerts = new Map<string, InForce>();
  private now = Number.NEGATIVE_INFINITY;

  constructor(private readonly config: GradingConfig) {
    this.replay = new Replay(config);
    const audit = new MemoryAuditLog((e) => this.audited.push(e));
    this.pager = new Pager({
      pages: new MemoryPageStore(audit),
      sender: { send: async () => undefined }, // every send is in the audit trail
      audit,
      config: config.paging,
      ackSecret: REPLAY_ACK_SECRET,
      ackBaseUrl: 'replay:',
    });
  }

  async line(text: string, lineNo: number): Promise<EscalationEvent[]> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value !== null && typeof value === 'object' && 'type' in value) return this.control(value, lineNo);

    const events: EscalationEvent[] = [];
    // Time passes up to this message before it is applied (its monitor data ends a stale feed only from now).
    const valid = checkReplayedLine(text);
    if (valid.ok) await this.advance(parseTime(valid.message.observedAt), events);
    const grading = this.replay.line(text, lineNo);
    const assessment = grading.find((e) => e.type === 'assessment');
    if (assessment) this.patients.add(assessment.patientId);
    events.push(...grading);
    for (const e of grading) if (e.type === 'notification') await this.pager.onNotification(e, this.now);
    if (assessment) {
      for (const a of this.replay.lastAlerts) await this.pager.onAlert(a, this.now);
      await this.checkFeeds([assessment.patientId], this.now, false);
    }
    return [...events, ...this.drain()];
  }

  /** Lets simulated time run to `until` (the end of the file, or --until). */
  async finish(until?: number): Promise<EscalationEvent[]> {
    const events: EscalationEvent[] = [];
    if (until !== undefined) await this.advance(until, events);
    return [...events, ...this.drain()];
  }

  private async control(value: object, lineNo: number): Promise<EscalationEvent[]> {
    const parsed = Control.safeParse(value);
    if (!parsed.success) {
      return [
        {
          type: 'control-refused',
          line: lineNo,
          error: parsed.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; '),
        },
      ];
    }
    const c: Control = parsed.data;
    const events: EscalationEvent[] = [];
    switch (c.type) {
      case 'advance':
        await this.advance(parseTime(c.to), events);
        break;
      case 'ack': {
        await this.advance(parseTime(c.at), events);
        const r = await this.pager.acknowledge(c.pageId, c.by, 'api', this.now);
        if (!r.ok) events.push({ type: 'control-refused', line: lineNo, error: r.reason });
        break;
      }
      case 'silence': {
        // As both servers refuse it (checkSilence): one scope, never both.
        if (c.patientId !== undefined && c.team !== undefined)
          return [{ type: 'control-refused', line: lineNo, error: ONE_SCOPE }];
        const scope = c.patientId ? { patientId: c.patientId } : c.team ? { team: c.team } : undefined;
        if (!scope) return [{ type: 'control-refused', line: lineNo, error: 'a silence needs a patientId or a team' }];
        if (!(parseTime(c.until) > parseTime(c.from)))
          return [{ type: 'control-refused', line: lineNo, error: 'until: must be after from' }];
        await this.advance(parseTime(c.from), events);
        await this.pager.silence(
          {
            silenceId: c.silenceId,
            scope,
            from: parseTime(c.from),
            until: parseTime(c.until),
            createdBy: c.by,
            reason: c.reason,
          },
          this.now,
        );
        break;
      }
      case 'end-silence':
        await this.advance(parseTime(c.at), events);
        // As `crs serve` answers 404: a mistyped id must not pass for a silence ended.
        if (!(await this.pager.endSilence(c.silenceId, c.by, this.now)))
          events.push({ type: 'control-refused', line: lineNo, error: 'no such silence' });
        break;
    }
    return [...events, ...this.drain()];
  }

  /**
   * Moves the simulated clock forward: ladders step at their due times, and a monitor that went quiet raises
   * its alert at the moment it became stale, in time order with the ladders.
   */
  private async advance(to: number, events: EscalationEvent[]): Promise<void> {
    if (to <= this.now) return;
    // The clock stops at every ladder step and stale feed on the way, as a timely ticker would: each step is sent
    // when it falls due (a tick that catches up would send them all when it runs, as after downtime).
    for (;;) {
      const stale = this.nextStaleAt();
      const due = await this.pager.nextDue(to);
      const step = due !== null && due > this.now ? due : undefined; // what fell due by now was ticked
      if (stale !== undefined && stale <= to && (step === undefined || stale <= step)) {
        await this.pager.onTick(stale);
        this.now = Math.max(this.now, stale);
        await this.checkFeeds([...this.patients], stale, true);
      } else if (step !== undefined) {
        await this.pager.onTick(step);
        this.now = step;
      } else break;
    }
    await this.pager.onTick(to);
    this.now = to;
    events.push(...this.drain());
  }

  /** The earliest time a patient's monitor feed becomes stale, among those not alerted yet. */
  private nextStaleAt(): number | undefined {
    let next: number | undefined;
    for (const patientId of this.patients) {
      if (this.staleAlerts.has(patientId)) continue;
      const f = feedStatus(this.replay.state(patientId) as PatientState, this.now, this.config.paging);
      if (!f) continue;
      const at = f.since + this.config.paging.staleFeedMinutes * 60_000;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /** Raises and clears stale-feed alerts as the sweeps of `crs serve` and the escalate function do. */
  private async checkFeeds(patientIds: string[], now: number, full: boolean): Promise<void> {
    const checks: FeedCheck[] = patientIds.map((patientId) => {
      const state = this.replay.state(patientId) as PatientState;
      return { patientId, state, feed: feedStatus(state, now, this.config.paging) };
    });
    const plan = planStaleFeeds(this.staleAlerts, checks, this.config.paging, now, full, this.config.site.timeZone);
    for (const alert of plan.alerts) await this.pager.onAlert(alert, now);
    for (const key of plan.remove) this.staleAlerts.delete(key);
    for (const [key, e] of plan.set) this.staleAlerts.set(key, e);
  }

  private drain(): EscalationEvent[] {
    return this.audited.splice(0).map(({ type, ...rest }) => ({ type: 'audit' as const, event: type, ...rest }));
  }
}
