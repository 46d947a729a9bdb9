/**
 * Custom search attributes of the product. The project registers them on the dev server and on external
 * namespaces at start-up, and every workflow the product starts sets them, so the Web UI filters by tenant.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Tenant of a workflow (`TenantId = "acme"` in the Web UI). */
export const TENANT_ID = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
/** Run id of a policy simulation (`PolicyRunId = "sim-…"`). */
export const POLICY_RUN_ID = defineSearchAttributeKey('PolicyRunId', SearchAttributeType.KEYWORD);
/** Policy of a policy simulation (`PolicyId = "baseline"`). */
export const POLICY_ID = defineSearchAttributeKey('PolicyId', SearchAttributeType.KEYWORD);

/** Saga of a saga instance (`SagaName = "advisory-impact-rescan"`). */
export const SAGA_NAME = defineSearchAttributeKey('SagaName', SearchAttributeType.KEYWORD);
/** Correlation id of a saga instance (`CorrelationId = "adv-2026-0042"`). */
export const CORRELATION_ID = defineSearchAttributeKey('CorrelationId', SearchAttributeType.KEYWORD);

/** Every custom search attribute the product needs registered. */
export const SEARCH_ATTRIBUTE_KEYS = [TENANT_ID, POLICY_RUN_ID, POLICY_ID, SAGA_NAME, CORRELATION_ID] as const;
