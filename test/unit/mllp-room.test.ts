// How crs mllp-bridge tells the server's "no room for a new patient" and whose messages wait behind it
// (shared/hosts/mllp-bridge/room.ts), without a bridge.
import { describe, expect, it } from 'vitest';
import { NO_ROOM_ACK } from '#app/hl7v2/ingest.ts';
import { noRoom, patientKeys, roomRetryMs } from '#hosts/mllp-bridge/room.ts';

const message = (id: string, pid3: string) =>
  `MSH|^~\\&|GW|F|CRS||20261206120000||ORU^R01^ORU_R01|${id}|P|2.6\rPID|||${pid3}||Doe^J\r`;
const ack = (code: string, id: string, text: string) =>
  `MSH|^~\\&|CRS||GW|F|20261206120001||ACK^R01^ACK|A1|P|2.6\rMSA|${code}|${id}|${text}\r`;

describe('the server has no room for a new patient', () => {
  it('from a server older than 2026-12-06 (no ERR-5): a 503 AR answering this very message, MSA-3 ending in its words', () => {
    const m = message('M-1', 'P1^^^A');
    expect(noRoom(503, ack('AR', 'M-1', `not all: ${NO_ROOM_ACK}`), m)).toBe(true);
    // Another status with the same words (no server sends it) is the server's last word, not a wait.
    expect(noRoom(500, ack('AR', 'M-1', `not all: ${NO_ROOM_ACK}`), m)).toBe(false);
    expect(noRoom(403, ack('AR', 'M-1', `not all: ${NO_ROOM_ACK}`), m)).toBe(false);
    // An empty control id matches nothing: an AR naming no message is not this one's.
    expect(noRoom(503, ack('AR', '', `not all: ${NO_ROOM_ACK}`), message('', 'P1^^^A'))).toBe(false);
  });

  it('is told by its code, ERR-5 NO_ROOM (since 2026-12-06), whatever MSA-3 says; an AR with another code is not', () => {
    const m = message('M-1', 'P1^^^A');
    const err = (erc: string) => `ERR||PID^1^3^1|207^Application internal error^HL70357|E|${erc}||||no room\r`;
    const coded = err('NO_ROOM^no room for a new patient^99CRS');
    expect(noRoom(503, `${ack('AR', 'M-1', 'MSA-3 reworded')}${coded}`, m)).toBe(true);
    // Among other ERRs (an observation refused beside it).
    expect(noRoom(503, `${ack('AR', 'M-1', 'x')}${err('')}${coded}`, m)).toBe(true);
    // A server that codes its errors and gives another code is not waited for, whatever MSA-3 says.
    expect(noRoom(503, `${ack('AR', 'M-1', `not all: ${NO_ROOM_ACK}`)}${err('QUOTA^over quota^99CRS')}`, m)).toBe(
      false,
    );
    expect(noRoom(503, `${ack('AR', 'M-1', 'x')}${err('NO_ROOM^no room^OTHER')}`, m)).toBe(false);
    // The code answering another message, in an AE or with another status: no wait either.
    expect(noRoom(503, `${ack('AR', 'M-9', 'x')}${coded}`, m)).toBe(false);
    expect(noRoom(503, `${ack('AE', 'M-1', 'x')}${coded}`, m)).toBe(false);
    expect(noRoom(403, `${ack('AR', 'M-1', 'x')}${coded}`, m)).toBe(false);
  });

  it('is sent again after the Retry-After, 1 s to 10 min, 60 s without one', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(roomRetryMs('0', now)).toBe(1000);
    expect(roomRetryMs('30', now)).toBe(30_000);
    expect(roomRetryMs('86400', now)).toBe(600_000);
    expect(roomRetryMs(null, now)).toBe(60_000);
    expect(roomRetryMs('soon', now)).toBe(60_000);
    expect(roomRetryMs(new Date(now + 120_000).toUTCString(), now)).toBe(120_000);
  });

  it('waits for a patient known by any PID-3 identifier', () => {
    expect(patientKeys(message('M-1', 'P1^^^A~P1B^^^B'))).toEqual(['P1', 'P1B']);
    expect(patientKeys('not HL7')).toEqual([]);
  });
});
