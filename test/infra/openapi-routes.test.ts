// The OpenAPI document (shared/app/openapi.ts) against the synthesized stack: every route the HTTP API has is a
// documented operation served on AWS, and every operation documented as served on AWS is a route of the API.
// (crs serve's routes: test/unit/openapi.test.ts.)
import { Template } from 'aws-cdk-lib/assertions';
import { expect, it } from 'vitest';
import { openApiDocument } from '#app/openapi.ts';
import { PAGING, templateApp } from './synth.ts';

it("documents exactly the HTTP API's routes as the operations served on AWS", () => {
  const { stack } = templateApp({ context: { paging: PAGING } });
  const routes = Object.values(Template.fromStack(stack).findResources('AWS::ApiGatewayV2::Route')).map(
    (r) => (r as { Properties: { RouteKey: string } }).Properties.RouteKey,
  );
  const paths = openApiDocument().paths as Record<string, Record<string, { 'x-crs-backends': string[] }>>;
  const onAws = Object.entries(paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([, op]) => op['x-crs-backends'].includes('aws'))
      .map(([method]) => `${method.toUpperCase()} ${path}`),
  );
  expect(routes.length).toBeGreaterThan(0);
  expect(onAws.sort()).toEqual(routes.sort());
}, 120_000);
