// Replay: the same validation, per-patient state and grading as the deployed pipeline, over lines of NDJSON
// taken in order as arrival order. States are held in memory, one per patient.
import type { GradingConfig } from '../domain/config.ts';
import { validateMessage } from '../domain/contract.ts';
import { stepEvents, type OutputEvent } from '../domain/events.ts';
import { reduce, type AlertChange } from '../domain/reducer.ts';
import type { PatientState } from '../domain/state.ts';

export class Replay {
  private readonly states = new Map<string, PatientState>();
  rejected = 0;
  accepted = 0;
  /** The technical alerts the last line raised or cleared (for the pager in --escalations mode). */
  lastAlerts: AlertChange[] = [];

  constructor(private readonly config: GradingConfig) {}

  /** Handles one line (1-based number); a blank line is skipped. Never throws on bad input. */
  line(text: string, lineNo: number): OutputEvent[] {
    this.lastAlerts = [];
    if (text.trim() === '') return [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.rejected++;
      return [{ type: 'rejected', line: lineNo, errors: [`line is not valid JSON: ${(err as Error).message}`] }];
    }
    const v = validateMessage(value);
    if (!v.ok) {
      this.rejected++;
      return [{ type: 'rejected', line: lineNo, errors: v.errors }];
    }
    this.accepted++;
    const step = reduce(this.states.get(v.message.patientId), v.message, this.config);
    this.states.set(v.message.patientId, step.state);
    if (step.kind === 'applied') this.lastAlerts = step.alerts;
    return stepEvents(step);
  }

  state(patientId: string): PatientState | undefined {
    return this.states.get(patientId);
  }
}
