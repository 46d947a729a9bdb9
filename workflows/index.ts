// The only workflow bundle entry: every workflow type the workers serve is re-exported here explicitly.
export { selfCheckWorkflow } from './self-check/workflow.js';
export { policySimulationWorkflow } from './policy-simulation/workflow.js';
export { packApprovalWorkflow } from './pack-approval/workflow.js';
export { retentionPurgeWorkflow } from './pack-approval/retention-workflow.js';
export { advisoryImpactRescanWorkflow } from './advisory-impact-rescan/workflow.js';
export { mirrorBundleExportWorkflow } from './mirror-bundle-export/workflow.js';
