// The CDK app: `npx cdk synth` / `npm run deploy` run this with tsx (see cdk.json).
import { buildApp } from './build.ts';

buildApp().app.synth();
