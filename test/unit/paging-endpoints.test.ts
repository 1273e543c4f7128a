// The paging endpoints file (`-c pagingConfig=FILE` for the stack, `crs doctor --paging FILE`): what SNS would refuse
// at deploy, or take and then page nobody with, is refused when the file is read, naming the entry.
import { describe, expect, it } from 'vitest';
import { parsePagingConfig } from '#domain/paging-endpoints.ts';

const parse = (config: unknown) => parsePagingConfig(config, 'paging.json');
const refused = (config: unknown, message: RegExp) => expect(() => parse(config)).toThrow(message);
const phone = '+15550100001';

describe('paging endpoints', () => {
  it.each([
    // SNS keeps one subscription per topic, protocol and endpoint: a second one with another filter policy fails the
    // deploy ("already exists with different attributes"), or two resources share one subscription.
    [
      'an SMS number listed twice in a team',
      { teams: { icu: { sms: [phone, phone] } } },
      /teams\.icu\.sms\.1: "\+15550100001" is listed twice \(also teams\.icu\.sms\.0\)/,
    ],
    [
      'an email address listed twice in the alarms',
      { alarms: { email: ['ops@hospital.example', 'ops@hospital.example'] } },
      /alarms\.email\.1: "ops@hospital\.example" is listed twice \(also alarms\.email\.0\)/,
    ],
    [
      'an SMS number in two teams limited to other wards',
      { teams: { icu: { sms: [phone] }, bedside: { sms: [phone], wards: ['H4'] } } },
      /teams\.bedside\.sms\.0: "\+15550100001" is also teams\.icu\.sms\.0, whose wards and smsKinds differ/,
    ],
    [
      'an SMS number in two teams with other smsKinds',
      { teams: { icu: { sms: [phone], smsKinds: ['escalation'] }, bedside: { sms: [phone] } } },
      /teams\.bedside\.sms\.0: .* is also teams\.icu\.sms\.0, whose wards and smsKinds differ/,
    ],
    [
      'a team with no endpoint (its pages would reach nobody)',
      { teams: { icu: { email: [], sms: [] }, bedside: { sms: [phone] } } },
      /teams\.icu: no endpoint \(email, sms or https\): its pages would reach nobody/,
    ],
    [
      // SNS subscribes each spelling: the same mailbox got every page twice.
      'an email address listed twice in a team in another letter case',
      { teams: { hematology: { email: ['Heme@Hospital.example', 'heme@hospital.example'] } } },
      /teams\.hematology\.email\.1: "heme@hospital\.example" is listed twice \(also teams\.hematology\.email\.0\)/,
    ],
    [
      'an email address in two teams, in another letter case, with other wards',
      {
        teams: {
          icu: { email: ['Charge@hospital.example'] },
          bedside: { email: ['charge@HOSPITAL.example'], wards: ['H4'] },
        },
      },
      /teams\.bedside\.email\.0: .* is also teams\.icu\.email\.0, whose wards and smsKinds differ/,
    ],
    [
      'an alarm email address listed twice in another letter case',
      { alarms: { email: ['ops@hospital.example', 'OPS@hospital.example'] } },
      /alarms\.email\.1: "OPS@hospital\.example" is listed twice/,
    ],
    [
      // smsKinds limits the team's SMS numbers only: with none, it did nothing (the email and HTTPS got every kind).
      'smsKinds on a team with no SMS number',
      { teams: { icu: { email: ['icu@hospital.example'], smsKinds: ['escalation'] } } },
      /teams\.icu\.smsKinds: the team has no SMS number/,
    ],
    ['a team with nothing in it', { teams: { icu: {} } }, /teams\.icu: no endpoint/],
    [
      'an https URL with no host',
      { teams: { icu: { https: ['https:///hooks/icu'] } } },
      /teams\.icu\.https\.0: .* is not an https:\/\/ URL/,
    ],
    [
      'an https URL with a port over 65535',
      { teams: { icu: { https: ['https://pager.example:99999/icu'] } } },
      /teams\.icu\.https\.0/,
    ],
    ['an https URL with < >', { teams: { icu: { https: ['https://pager<x>.example/'] } } }, /teams\.icu\.https\.0/],
    [
      'a ward longer than a device message may send (32)',
      { teams: { icu: { sms: [phone], wards: ['W'.repeat(33)] } } },
      /teams\.icu\.wards\.0: .* is longer than 32 characters/,
    ],
    [
      'a ward with a control character',
      { teams: { icu: { sms: [phone], wards: ['H\t4'] } } },
      /teams\.icu\.wards\.0: .*control character/,
    ],
    [
      // SNS refuses a filter policy whose combinations of values exceed 150 (teams x wards x kinds).
      'more wards than an SMS filter policy can hold with its kinds',
      {
        teams: {
          icu: {
            sms: [phone],
            smsKinds: ['escalation', 'alert'],
            wards: Array.from({ length: 51 }, (_, i) => `W${i}`),
          },
        },
      },
      /teams\.icu\.wards: 51 wards x 3 kinds of page is over the 150 values SNS allows in a filter policy/,
    ],
    [
      'more than 150 wards',
      { teams: { icu: { email: ['icu@hospital.example'], wards: Array.from({ length: 151 }, (_, i) => `W${i}`) } } },
      /teams\.icu\.wards: 151 wards x 1 kind of page is over the 150/,
    ],
  ])('refuses %s', (_, config, message) => refused(config, message));

  it('takes one endpoint in two teams whose filters agree (one subscription for both), 50 wards x 3 kinds, and a port', () => {
    const both = { sms: [phone], email: ['charge@hospital.example'], wards: ['H4'] };
    expect(parse({ teams: { icu: both, bedside: both } }).teams.bedside).toEqual({ ...both, https: [] });
    const wards = Array.from({ length: 50 }, (_, i) => `W${i}`);
    expect(
      parse({ teams: { icu: { sms: [phone], smsKinds: ['escalation', 'alert'], wards } } }).teams.icu?.wards,
    ).toEqual(wards);
    expect(parse({ teams: { icu: { https: ['https://pager.example:8443/icu?team=icu'] } } }).teams.icu?.https).toEqual([
      'https://pager.example:8443/icu?team=icu',
    ]);
  });
});
