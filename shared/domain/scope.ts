// The kinds of device a token is issued for, and the scope a token keeps (shared/app/scope.ts has the rules).
import { SOURCE_KINDS } from './vocabulary.ts';

export type DeviceKind = (typeof SOURCE_KINDS)[number];
export const DEVICE_KINDS: readonly DeviceKind[] = SOURCE_KINDS;

/** What a token was issued for, as the token stores keep it. No kind: a token issued before scopes (role `legacy`). */
export interface TokenScope {
  kind?: DeviceKind;
  /** Only patients in these wards (`enrolment.ward`). */
  wards?: string[];
  /** Only these patients (patient ids). */
  patients?: string[];
}

/**
 * A device id as `crs token issue --device` takes it: 1-128 printable ASCII characters, no space. The id a TLS client
 * certificate's subject CN gives for `crs serve --mllp-port` is held to it too (shared/hosts/mllp-tls.ts).
 */
export const TOKEN_DEVICE_ID = { pattern: /^[\x21-\x7e]{1,128}$/, text: '1-128 printable ASCII characters, no space' };
