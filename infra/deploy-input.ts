// A deploy-time input refused: the operator's `-c` value (or the paging config it names) is wrong. infra/app.ts says
// it in one line and exits 1; any other error at synth, a plain Error included, is a defect and keeps its trace.
export class DeployInputError extends Error {
  override name = 'DeployInputError';
}
