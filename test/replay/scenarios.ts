/** The workflow scenarios whose histories are committed for replay tests (recorded by `npm run histories:record`). */
import { fileURLToPath } from 'node:url';

/** One recorded execution. */
export interface ReplayScenario {
  name: string;
  workflowType: string;
  args: unknown[];
}

export const REPLAY_SCENARIOS: ReplayScenario[] = [
  {
    name: 'self-check-three-activities',
    workflowType: 'selfCheckWorkflow',
    args: [{ tenantId: 'replay', activityCount: 3 }],
  },
  {
    name: 'self-check-with-timer',
    workflowType: 'selfCheckWorkflow',
    args: [{ tenantId: 'replay', activityCount: 1, sleepSeconds: 1 }],
  },
  {
    name: 'self-check-invalid-input',
    workflowType: 'selfCheckWorkflow',
    args: [{ tenantId: 'replay', activityCount: -1 }],
  },
];

/** Where a scenario's history is committed. */
export function historyPath(name: string): string {
  return fileURLToPath(new URL(`./histories/${name}.json`, import.meta.url));
}
