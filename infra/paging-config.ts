// Who gets paged: each team's endpoints (email, SMS, HTTPS), and the operators' endpoints for alarms. Comes from
// CDK context: `-c pagingConfig=FILE` (a JSON file) or `-c paging='{...}'` (the same JSON inline).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pagedTeams, type GradingConfig } from '#domain/config.ts';
import { PAGE_TEAMS } from '#domain/paging.ts';
import { parsePagingConfig, type PagingConfig } from '#domain/paging-endpoints.ts';
import { DeployInputError } from './deploy-input.ts';

export type { PagingConfig } from '#domain/paging-endpoints.ts';

/**
 * Reads the paging config from context; no config means no subscriptions (the stack warns at synth). An empty
 * `pagingConfig` (`-c pagingConfig=$PAGING` with the variable unset) is refused: it deployed a stack paging nobody.
 */
export function pagingConfigFromContext(tryGetContext: (key: string) => unknown, cwd = process.cwd()): PagingConfig {
  const inline = tryGetContext('paging');
  const file = tryGetContext('pagingConfig');
  if (inline !== undefined && file !== undefined)
    throw new DeployInputError(
      'context paging and pagingConfig are both given: give the paging config once, inline or as a file',
    );
  if (inline !== undefined) {
    let json: unknown = inline;
    if (typeof inline === 'string') {
      try {
        json = JSON.parse(inline);
      } catch (err) {
        throw new DeployInputError(`context paging is not valid JSON: ${(err as Error).message}`);
      }
    }
    return parsePagingConfig(json, 'context paging', DeployInputError);
  }
  if (file !== undefined) {
    if (typeof file !== 'string' || file.trim() === '')
      throw new DeployInputError(
        `context pagingConfig must name a JSON file of the paging endpoints (got ${JSON.stringify(file)}): without it nobody is paged`,
      );
    const path = resolve(cwd, file);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new DeployInputError(`cannot read paging config ${path}: ${(err as Error).message}`);
    }
    return parsePagingConfig(json, path, DeployInputError);
  }
  return parsePagingConfig({}, 'none given', DeployInputError);
}

/**
 * Refuses a paging config that leaves out a team the configuration pages (a grade's routing, an alert's teams): its
 * pages were published to no subscriber and reached nobody, until the ladder ran out. No config at all is the
 * synth without endpoints (warned at synth: `npm run synth` for review) and is not refused here.
 */
export function checkEveryPagedTeamSubscribed(paging: PagingConfig, config: GradingConfig): void {
  const subscribed = (team: string) => isSubscribed(paging, team);
  if (!PAGE_TEAMS.some(subscribed)) return;
  const by = [...pagedTeams(config)].filter(([team]) => !subscribed(team));
  if (by.length === 0) return;
  throw new DeployInputError(
    `paging config: no endpoint for ${by.map(([team, where]) => `${team} (paged by ${where.join(', ')})`).join('; ')}: its pages would reach nobody. Give the team endpoints, or route its pages to another team (gradingConfig)`,
  );
}

/** Whether the paging config gives a team an endpoint. */
function isSubscribed(paging: PagingConfig, team: string): boolean {
  const e = paging.teams[team as keyof PagingConfig['teams']];
  return e !== undefined && e.email.length + e.sms.length + e.https.length > 0;
}

/**
 * The teams the paging config gives no endpoint, when it gives some team one (none at all: the synth without
 * endpoints, warned, where every page reaches nobody alike): the functions that page set their pages aside, named
 * (ENV.teamsWithoutEndpoints). The grading configuration pages none of them (checkEveryPagedTeamSubscribed); pages
 * still open from before, when it did, are what this is for (2026-12-07).
 */
export function teamsWithoutEndpoints(paging: PagingConfig): string[] {
  if (!PAGE_TEAMS.some((t) => isSubscribed(paging, t))) return [];
  return PAGE_TEAMS.filter((t) => !isSubscribed(paging, t));
}
