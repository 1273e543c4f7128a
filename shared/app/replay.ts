// Replay: the same validation, per-patient state and grading as the deployed pipeline, over lines of NDJSON
// taken in order as arrival order. States are held in memory, one per patient, and so is every message identity
// applied (messageId -> digests), unbounded: in a replay a duplicate is a duplicate however late it comes.
import type { GradingConfig } from '#domain/config.ts';
import { stepEvents, type OutputEvent } from '#domain/events.ts';
import { reduce, type AlertChange } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { arrivalOf } from './digest.ts';
import { checkReplayedLine } from './ingest.ts';

export class Replay {
  private readonly states = new Map<string, PatientState>();
  /** "patientId|messageId" -> the digests that id was applied with (patientIds cannot hold "|"). */
  private readonly applied = new Map<string, string[]>();
  rejected = 0;
  accepted = 0;
  /** The technical alerts the last line raised or cleared (for the pager in --escalations mode). */
  lastAlerts: AlertChange[] = [];

  constructor(private readonly config: GradingConfig) {}

  /** Handles one line (1-based number); a blank line is skipped. Never throws on bad input. */
  line(text: string, lineNo: number): OutputEvent[] {
    this.lastAlerts = [];
    if (text.trim() === '') return [];
    const v = checkReplayedLine(text);
    if (!v.ok) {
      this.rejected++;
      return [{ type: 'rejected', line: lineNo, errors: v.errors }];
    }
    this.accepted++;
    const key = `${v.message.patientId}|${v.message.messageId}`;
    const prior = this.applied.get(key);
    const step = reduce(this.states.get(v.message.patientId), v.message, this.config, arrivalOf(v.message, prior));
    this.states.set(v.message.patientId, step.state);
    if (step.kind === 'applied') {
      this.lastAlerts = step.alerts;
      if (prior) prior.push(step.digest);
      else this.applied.set(key, [step.digest]);
    }
    return stepEvents(step);
  }

  state(patientId: string): PatientState | undefined {
    return this.states.get(patientId);
  }
}
