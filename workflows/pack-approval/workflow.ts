import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { PackApprovalActivities } from '../../activities/pack-approval/index.js';
import { databaseWrite, HEARTBEAT_TIMEOUT } from '../shared/activity-options.js';
import { failureMessage } from '../shared/failures.js';
import {
  ackApprovalUpdate,
  ApprovalFailure,
  getApprovalQuery,
  packApprovalEventSignal,
  type AckApprovalArgs,
  type AckResult,
  type ApprovalView,
  type NotificationIntent,
  type PackApprovalEvent,
  type PackApprovalInput,
} from './definitions.js';
import {
  ackRejection,
  applyEvent,
  decide,
  initialView,
  isFinal,
  nextTimer,
  requestedTransition,
  type Transition,
} from './state.js';

const DEFAULT_REMINDERS_SECONDS = [3600];
/** Patch marker: the resume callback goes out before the "decided" notice (never rename). */
const RESUME_BEFORE_DECIDED_NOTICE = 'resume-before-decided-notice';
const DEFAULT_TTL_SECONDS = 7 * 24 * 3600;

const { recordApproval, planApprovalNotifications } = proxyActivities<PackApprovalActivities>({
  ...databaseWrite,
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
// Outbound calls ride out outages: retries back off to 5 minutes for up to a day, each call idempotent; refusals
// (4xx) come back from the activities as non-retryable failures.
const { deliverApprovalNotification, resumeTaskRunner } = proxyActivities<PackApprovalActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/**
 * One approval (or policy gate) of a Task Runner run.
 *
 * - Signal `packApprovalEvent`: Requested / Updated events, deduplicated by eventId (started by signalWithStart).
 * - Update `ackApproval`: approve or reject; rejected when unknown, no longer pending, decided differently, or the
 *   approver lacks the required grants; the same decision again answers the original result.
 * - Query `getApproval`.
 * - Timers: reminders before expiry (`reminderOffsetsSeconds`), then expiry, which notifies and reports back.
 * - Every transition is persisted and audited; notifications go out per routing rules; after a decision (or expiry)
 *   the Task Runner resume callback is called first (signed, retried, idempotent) and its outcome recorded, then the
 *   approvers get the "decided" notice.
 * - Finishes after all handlers are done. Id: `pack-approval/{tenant}/{runId}/{approvalId}`.
 */
export async function packApprovalWorkflow(input: PackApprovalInput): Promise<ApprovalView> {
  const queue: PackApprovalEvent[] = [];
  const early: PackApprovalEvent[] = []; // updates that arrived before their request
  const seen = new Set<string>();
  let view: ApprovalView | undefined;
  let callback: PackApprovalEvent['resumeCallback'];
  let seq = 0;
  let remindersSent = 0;
  let round = 0; // notification rounds: part of each delivery's idempotency key
  const reminders = input.reminderOffsetsSeconds ?? DEFAULT_REMINDERS_SECONDS;

  setHandler(packApprovalEventSignal, (event) => {
    if (seen.has(event.eventId)) return;
    seen.add(event.eventId);
    queue.push(event);
  });
  setHandler(getApprovalQuery, () => {
    if (!view) throw ApplicationFailure.nonRetryable('No approval was requested yet', ApprovalFailure.NotRequested);
    return view;
  });

  const persist = async (transition: Transition | undefined, actor: string, eventId?: string) => {
    const current = view!;
    await recordApproval({
      view: current,
      seq: transition ? ++seq : seq,
      ...(transition
        ? {
            transition: {
              from: transition.from,
              to: transition.to,
              reason: transition.reason,
              auditType: transition.auditType,
            },
          }
        : {}),
      actor,
      ...(eventId ? { eventId } : {}),
    });
  };
  const notify = async (reason: NotificationIntent['reason']) => {
    const snapshot = view!;
    const thisRound = ++round;
    const intents = await planApprovalNotifications({ view: snapshot, reason, round: thisRound });
    await Promise.all(
      intents.map((intent) =>
        deliverApprovalNotification({ view: snapshot, intent, round: thisRound }).catch((error: unknown) =>
          log.warn('notification not delivered', { channel: intent.channel, reason, error: failureMessage(error) }),
        ),
      ),
    );
  };
  const transition = async (t: Transition, actor: string, eventId?: string) => {
    await persist(t, actor, eventId);
    if (t.notify) await notify(t.notify);
  };

  setHandler(
    ackApprovalUpdate,
    async (args): Promise<AckResult> => {
      if (view!.decision) return { ...view!.decision, repeated: true }; // the same decision again: the original result
      const decided = decide(view!, args, new Date().toISOString());
      view = decided.view;
      await persist(decided.transition, args.decidedBy);
      return decided.result;
    },
    {
      validator: (args: AckApprovalArgs) => {
        const rejection = ackRejection(view, args);
        if (rejection) throw ApplicationFailure.nonRetryable(rejection.message, rejection.type);
      },
    },
  );

  await condition(() => queue.length > 0);
  for (;;) {
    while (queue.length > 0) {
      const event = queue.shift()!;
      if (event.resumeCallback) callback = event.resumeCallback;
      if (!view) {
        if (event.type !== 'PackApprovalRequested') {
          // Delivered out of order: kept until the request arrives, never dropped.
          early.push(event);
          continue;
        }
        view = initialView(event, input.defaultTtlSeconds ?? DEFAULT_TTL_SECONDS);
        await transition(requestedTransition(view), event.requestedBy, event.eventId);
        queue.unshift(...early.splice(0));
        continue;
      }
      const applied = applyEvent(view, event);
      view = applied.view;
      if (applied.transition) await transition(applied.transition, 'task-runner', event.eventId);
      else await persist(undefined, 'task-runner', event.eventId);
    }
    if (view && isFinal(view.state)) break;
    const timer = view ? nextTimer(view, reminders, remindersSent) : undefined;
    const woke = await condition(
      () => queue.length > 0 || (view !== undefined && isFinal(view.state)),
      timer ? Math.max(1, timer.at - Date.now()) : undefined,
    );
    if (woke || !timer || !view) continue;
    if (timer.kind === 'reminder') {
      remindersSent++;
      await notify('reminder');
    } else {
      view = { ...view, state: 'expired' };
      await transition(
        {
          from: 'pending',
          to: 'expired',
          reason: 'approval expired',
          auditType: 'pack.approval.expired',
          notify: 'expired',
        },
        'system',
      );
    }
  }

  const final = view;
  // The Task Runner waits on the decision; the approvers' "decided" notice can follow. Executions that began before
  // this order keep the old one (notice first), so their histories replay unchanged.
  const resumeFirst = patched(RESUME_BEFORE_DECIDED_NOTICE);
  if (final.decision && !resumeFirst) await notify('decided');
  // Report decisions and expiry back to the Task Runner; other endings came from it.
  if (final.decision || final.state === 'expired') {
    let resume: ApprovalView['resume'];
    if (!callback) {
      resume = { status: 'not-configured' };
    } else {
      try {
        resume = await resumeTaskRunner({
          view: final,
          callback,
          decision: final.decision?.decision ?? 'reject',
          decidedBy: final.decision?.decidedBy ?? 'system',
          decidedAt: final.decision?.decidedAt ?? new Date().toISOString(),
          comment: final.decision?.comment ?? (final.state === 'expired' ? 'approval expired' : undefined),
        });
      } catch (error) {
        resume = { status: 'failed', error: failureMessage(error) };
      }
    }
    view = { ...view, resume, decision: final.decision ? { ...final.decision, resumeStatus: resume.status } : null };
    await persist(undefined, 'system');
  }
  if (final.decision && resumeFirst) await notify('decided');
  await condition(allHandlersFinished);
  return view;
}
