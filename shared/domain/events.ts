// The NDJSON events that `crs replay` prints and every backend emits for pages (message-contract.md).
import type { Reason } from './grading.ts';
import type { Notification } from './page.ts';
import type { Assessment, Step } from './reducer.ts';

type Criterion = Pick<Reason, 'criterion' | 'value' | 'at'>;

export interface AssessmentEvent extends Omit<Assessment, 'reasons' | 'warnings'> {
  type: 'assessment';
  reasons: string[];
  criteria: Criterion[];
  /** Warnings that are not grades (e.g. low SpO2 without oxygen), only when there are any. */
  warnings?: string[];
}

export interface NotificationEvent extends Omit<Notification, 'reasons'> {
  type: 'notification';
  reasons: string[];
  criteria: Criterion[];
}

interface DuplicateEvent {
  type: 'duplicate';
  messageId: string;
  patientId: string;
}

interface RejectedEvent {
  type: 'rejected';
  line: number;
  errors: string[];
}

export type OutputEvent = AssessmentEvent | NotificationEvent | DuplicateEvent | RejectedEvent;

const criteria = (reasons: Reason[]): Criterion[] =>
  reasons.map(({ criterion, value, at }) => ({ criterion, value, at }));

function assessmentEvent(a: Assessment): AssessmentEvent {
  const { reasons, warnings, ...rest } = a;
  const event: AssessmentEvent = {
    type: 'assessment',
    ...rest,
    reasons: reasons.map((r) => r.text),
    criteria: criteria(reasons),
  };
  if (warnings.length > 0) event.warnings = warnings.map((w) => w.text);
  return event;
}

export function notificationEvent(n: Notification): NotificationEvent {
  const { reasons, ...rest } = n;
  return { type: 'notification', ...rest, reasons: reasons.map((r) => r.text), criteria: criteria(reasons) };
}

/** The events one reducer step produces: the assessment first, then the pages it caused. */
export function stepEvents(step: Step): OutputEvent[] {
  if (step.kind === 'duplicate') return [{ type: 'duplicate', messageId: step.messageId, patientId: step.patientId }];
  return [assessmentEvent(step.assessment), ...step.notifications.map(notificationEvent)];
}
