// DynamoDB capacity for the tables written on every message (patient state, audit trail, seen messages): on demand by default,
// or provisioned with auto scaling (`-c capacity=provisioned`), which costs about a third as much under a steady
// load such as 1,000 patients sending every 15 s (docs/cost.md has the figures from `npm run cost`). The tables
// written per page or per request (pages, tokens) stay on demand: their load comes in bursts.
//
// Provisioned capacity follows the load with DynamoDB auto scaling at 70 % utilization, between `min` and `max`
// units per table and per index. Above `max`, or in a burst faster than auto scaling reacts (a minute or two;
// DynamoDB's burst capacity covers about five minutes of unused units), requests are throttled: the SDK retries,
// then the grade function fails the batch and SQS redelivers it (the `StateTableThrottled` and
// `AuditTableThrottled` alarms say so). Set `max` above the largest load expected, with room.
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { DeployInputError } from './deploy-input.ts';

const CAPACITY_MODES = ['on-demand', 'provisioned'] as const;
export type CapacityMode = (typeof CAPACITY_MODES)[number];

export interface CapacityLimits {
  /** Units per table and per index, reads and writes alike. */
  min: number;
  max: number;
  /** Auto scaling's target utilization, percent. */
  targetUtilization: number;
}

const DEFAULT_CAPACITY_LIMITS: CapacityLimits = { min: 5, max: 4000, targetUtilization: 70 };

/** The limits given (context `capacityLimits`) over the defaults; a limit it does not know is refused, naming it. */
export function capacityLimitsOf(given: unknown): CapacityLimits {
  if (given === undefined) return DEFAULT_CAPACITY_LIMITS;
  const known = Object.keys(DEFAULT_CAPACITY_LIMITS);
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    throw new DeployInputError(
      `capacityLimits must be a JSON object of ${known.join(', ')} (got ${JSON.stringify(given)})`,
    );
  for (const k of Object.keys(given))
    if (!known.includes(k)) throw new DeployInputError(`capacityLimits: no limit "${k}" (${known.join(', ')})`);
  return { ...DEFAULT_CAPACITY_LIMITS, ...(given as Partial<CapacityLimits>) };
}

export function checkCapacity(mode: string, limits: CapacityLimits): CapacityMode {
  if (!(CAPACITY_MODES as readonly string[]).includes(mode))
    throw new DeployInputError(`capacity must be ${CAPACITY_MODES.join(' or ')} (got ${JSON.stringify(mode)})`);
  const { min, max, targetUtilization: t } = limits;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min)
    throw new DeployInputError(
      `capacityLimits: min and max must be whole numbers, 1 <= min <= max (got ${JSON.stringify(limits)})`,
    );
  if (!Number.isInteger(t) || t < 20 || t > 90)
    throw new DeployInputError(
      `capacityLimits.targetUtilization must be a whole percentage 20-90 (got ${JSON.stringify(t)})`,
    );
  return mode as CapacityMode;
}

/** The table properties of a table written on every message. */
export function perMessageBilling(
  mode: CapacityMode,
  limits: CapacityLimits,
): Pick<dynamodb.TableProps, 'billingMode' | 'readCapacity' | 'writeCapacity'> {
  return mode === 'provisioned'
    ? { billingMode: dynamodb.BillingMode.PROVISIONED, readCapacity: limits.min, writeCapacity: limits.min }
    : { billingMode: dynamodb.BillingMode.PAY_PER_REQUEST };
}

/** An index's capacity, on a table written on every message. */
export function perMessageIndexCapacity(
  mode: CapacityMode,
  limits: CapacityLimits,
): Pick<dynamodb.GlobalSecondaryIndexProps, 'readCapacity' | 'writeCapacity'> {
  return mode === 'provisioned' ? { readCapacity: limits.min, writeCapacity: limits.min } : {};
}

/** Auto scaling of a provisioned table's reads and writes, and of its indexes'. */
export function autoScale(table: dynamodb.Table, indexes: string[], limits: CapacityLimits): void {
  const range = { minCapacity: limits.min, maxCapacity: limits.max };
  const target = { targetUtilizationPercent: limits.targetUtilization };
  table.autoScaleReadCapacity(range).scaleOnUtilization(target);
  table.autoScaleWriteCapacity(range).scaleOnUtilization(target);
  for (const index of indexes) {
    table.autoScaleGlobalSecondaryIndexReadCapacity(index, range).scaleOnUtilization(target);
    table.autoScaleGlobalSecondaryIndexWriteCapacity(index, range).scaleOnUtilization(target);
  }
}
