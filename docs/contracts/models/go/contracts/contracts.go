// Code generated from JSON Schema using quicktype. DO NOT EDIT.
// To parse and unparse this JSON data, add this code to your project and do:
//
//    aggregateEvent, err := UnmarshalAggregateEvent(bytes)
//    bytes, err = aggregateEvent.Marshal()
//
//    effectCommand, err := UnmarshalEffectCommand(bytes)
//    bytes, err = effectCommand.Marshal()
//
//    effectResult, err := UnmarshalEffectResult(bytes)
//    bytes, err = effectResult.Marshal()
//
//    gatewayCommand, err := UnmarshalGatewayCommand(bytes)
//    bytes, err = gatewayCommand.Marshal()
//
//    packApprovalRequested, err := UnmarshalPackApprovalRequested(bytes)
//    bytes, err = packApprovalRequested.Marshal()
//
//    packApprovalUpdated, err := UnmarshalPackApprovalUpdated(bytes)
//    bytes, err = packApprovalUpdated.Marshal()

package contracts

import "time"

import "encoding/json"

func UnmarshalAggregateEvent(data []byte) (AggregateEvent, error) {
	var r AggregateEvent
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *AggregateEvent) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

func UnmarshalEffectCommand(data []byte) (EffectCommand, error) {
	var r EffectCommand
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *EffectCommand) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

func UnmarshalEffectResult(data []byte) (EffectResult, error) {
	var r EffectResult
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *EffectResult) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

func UnmarshalGatewayCommand(data []byte) (GatewayCommand, error) {
	var r GatewayCommand
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *GatewayCommand) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

func UnmarshalPackApprovalRequested(data []byte) (PackApprovalRequested, error) {
	var r PackApprovalRequested
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *PackApprovalRequested) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

func UnmarshalPackApprovalUpdated(data []byte) (PackApprovalUpdated, error) {
	var r PackApprovalUpdated
	err := json.Unmarshal(data, &r)
	return r, err
}

func (r *PackApprovalUpdated) Marshal() ([]byte, error) {
	return json.Marshal(r)
}

type AggregateEvent struct {
	// Id of the aggregate instance
	AggregateID                                                   string                  `json:"aggregateId"`
	// Type of the aggregate that emitted the event, e.g. Advisory
	AggregateType                                                 string                  `json:"aggregateType"`
	// Correlation id of the business process the event belongs to
	CorrelationID                                                 *string                 `json:"correlationId,omitempty"`
	// Unique id of the event; a repeat is answered as a duplicate
	EventID                                                       string                  `json:"eventId"`
	// Event type, e.g. Advisory.Published
	EventType                                                     string                  `json:"eventType"`
	Metadata                                                      *AggregateEventMetadata `json:"metadata,omitempty"`
	// When the aggregate emitted the event
	OccurredAt                                                    time.Time               `json:"occurredAt"`
	// Event data
	Payload                                                       map[string]interface{}  `json:"payload"`
	// Sequence in the aggregate
	Sequence                                                      int64                   `json:"sequence"`
	// Tenant; must equal the token’s tenant
	TenantID                                                      string                  `json:"tenantId"`
}

type AggregateEventMetadata struct {
	CausationID                                                 *string `json:"causationId,omitempty"`
	// Correlation id, when the aggregate carries it in metadata
	CorrelationID                                               *string `json:"correlationId,omitempty"`
	Traceparent                                                 *string `json:"traceparent,omitempty"`
}

type EffectCommand struct {
	// Deterministic id; the Idempotency-Key
	CommandID                               string                 `json:"commandId"`
	// Provider name in the effects manifest
	EffectName                              string                 `json:"effectName"`
	Metadata                                EffectCommandMetadata  `json:"metadata"`
	// Input of the provider
	Payload                                 map[string]interface{} `json:"payload"`
	// Tenant
	TenantID                                string                 `json:"tenantId"`
}

type EffectCommandMetadata struct {
	CausationID   *string `json:"causationId,omitempty"`
	CorrelationID *string `json:"correlationId,omitempty"`
	Traceparent   *string `json:"traceparent,omitempty"`
	WorkflowID    *string `json:"workflowId,omitempty"`
}

type EffectResult struct {
	CommandID                                              string                 `json:"commandId"`
	// Provider name
	EffectName                                             string                 `json:"effectName"`
	// Provider answer (or the refusal: status and message)
	Payload                                                map[string]interface{} `json:"payload"`
	ResultType                                             ResultType             `json:"resultType"`
	// Tenant
	TenantID                                               string                 `json:"tenantId"`
	Timestamp                                              time.Time              `json:"timestamp"`
}

type GatewayCommand struct {
	// Id of the target aggregate
	AggregateID                                                    string                 `json:"aggregateId"`
	// Type of the target aggregate
	AggregateType                                                  string                 `json:"aggregateType"`
	// What caused the command
	CausationID                                                    string                 `json:"causationId"`
	// Deterministic id; the Idempotency-Key
	CommandID                                                      string                 `json:"commandId"`
	// Command type, e.g. RequestRescan
	CommandType                                                    string                 `json:"commandType"`
	// Correlation id the aggregate copies into the events it emits
	CorrelationID                                                  string                 `json:"correlationId"`
	ExpectedSequence                                               *int64                 `json:"expectedSequence,omitempty"`
	// Command data
	Payload                                                        map[string]interface{} `json:"payload"`
	// Tenant
	TenantID                                                       string                 `json:"tenantId"`
}

type PackApprovalRequested struct {
	// Approval id within the run
	ApprovalID                                                         string                               `json:"approvalId"`
	CorrelationID                                                      string                               `json:"correlationId"`
	// Unique id of this event; a repeat is acknowledged as a duplicate
	EventID                                                            string                               `json:"eventId"`
	// When the approval expires
	ExpiresAt                                                          *time.Time                           `json:"expiresAt,omitempty"`
	Kind                                                               Kind                                 `json:"kind"`
	// Preferred locale, e.g. de-DE
	Locale                                                             *string                              `json:"locale,omitempty"`
	// Message template and parameters
	Message                                                            PackApprovalRequestedMessage         `json:"message"`
	// Hash of the pack plan
	PlanHash                                                           string                               `json:"planHash"`
	PolicyGate                                                         *PackApprovalRequestedPolicyGate     `json:"policyGate,omitempty"`
	// When the approval was requested
	RequestedAt                                                        time.Time                            `json:"requestedAt"`
	RequestedBy                                                        string                               `json:"requestedBy"`
	// Grants an approver needs
	RequiredGrants                                                     []string                             `json:"requiredGrants"`
	ResumeCallback                                                     *PackApprovalRequestedResumeCallback `json:"resumeCallback,omitempty"`
	// Task Runner run id
	RunID                                                              string                               `json:"runId"`
	// Plan steps behind the approval
	StepIDS                                                            []string                             `json:"stepIds"`
	// Tenant; must equal the token’s tenant
	TenantID                                                           string                               `json:"tenantId"`
	Traceparent                                                        *string                              `json:"traceparent,omitempty"`
	Type                                                               PackApprovalRequestedType            `json:"type"`
}

// Message template and parameters
type PackApprovalRequestedMessage struct {
	// Template parameters
	Parameters            map[string]interface{} `json:"parameters"`
	TemplateID            string                 `json:"templateId"`
}

type PackApprovalRequestedPolicyGate struct {
	// Policy gate id
	GateID                               string                 `json:"gateId"`
	// Gate messages
	Messages                             []string               `json:"messages"`
	// Gate parameters shown to approvers
	Parameters                           map[string]interface{} `json:"parameters"`
}

type PackApprovalRequestedResumeCallback struct {
	// Secret resume token; never leaves in clear
	Token                                        string `json:"token"`
	// Task Runner resume endpoint
	URL                                          string `json:"url"`
}

type PackApprovalUpdated struct {
	// Approval id within the run
	ApprovalID                                                         string                             `json:"approvalId"`
	CorrelationID                                                      string                             `json:"correlationId"`
	// Unique id of this event; a repeat is acknowledged as a duplicate
	EventID                                                            string                             `json:"eventId"`
	// When the approval expires
	ExpiresAt                                                          *time.Time                         `json:"expiresAt,omitempty"`
	Kind                                                               Kind                               `json:"kind"`
	// Preferred locale, e.g. de-DE
	Locale                                                             *string                            `json:"locale,omitempty"`
	// Message template and parameters
	Message                                                            PackApprovalUpdatedMessage         `json:"message"`
	// Hash of the pack plan
	PlanHash                                                           string                             `json:"planHash"`
	PolicyGate                                                         *PackApprovalUpdatedPolicyGate     `json:"policyGate,omitempty"`
	Reason                                                             *string                            `json:"reason,omitempty"`
	// When the approval was requested
	RequestedAt                                                        time.Time                          `json:"requestedAt"`
	RequestedBy                                                        string                             `json:"requestedBy"`
	// Grants an approver needs
	RequiredGrants                                                     []string                           `json:"requiredGrants"`
	ResumeCallback                                                     *PackApprovalUpdatedResumeCallback `json:"resumeCallback,omitempty"`
	// Task Runner run id
	RunID                                                              string                             `json:"runId"`
	// New status
	Status                                                             Status                             `json:"status"`
	// Plan steps behind the approval
	StepIDS                                                            []string                           `json:"stepIds"`
	// Tenant; must equal the token’s tenant
	TenantID                                                           string                             `json:"tenantId"`
	Traceparent                                                        *string                            `json:"traceparent,omitempty"`
	Type                                                               PackApprovalUpdatedType            `json:"type"`
}

// Message template and parameters
type PackApprovalUpdatedMessage struct {
	// Template parameters
	Parameters            map[string]interface{} `json:"parameters"`
	TemplateID            string                 `json:"templateId"`
}

type PackApprovalUpdatedPolicyGate struct {
	// Policy gate id
	GateID                               string                 `json:"gateId"`
	// Gate messages
	Messages                             []string               `json:"messages"`
	// Gate parameters shown to approvers
	Parameters                           map[string]interface{} `json:"parameters"`
}

type PackApprovalUpdatedResumeCallback struct {
	// Secret resume token; never leaves in clear
	Token                                        string `json:"token"`
	// Task Runner resume endpoint
	URL                                          string `json:"url"`
}

type ResultType string

const (
	Failed             ResultType = "failed"
	ResultTypeRejected ResultType = "rejected"
	Succeeded          ResultType = "succeeded"
)

type Kind string

const (
	PackApproval   Kind = "pack.approval"
	PackPolicyGate Kind = "pack.policy.gate"
)

type PackApprovalRequestedType string

const (
	TypePackApprovalRequested PackApprovalRequestedType = "PackApprovalRequested"
)

// New status
type Status string

const (
	Approved       Status = "approved"
	Cancelled      Status = "cancelled"
	Expired        Status = "expired"
	Held           Status = "held"
	Released       Status = "released"
	StatusRejected Status = "rejected"
)

type PackApprovalUpdatedType string

const (
	TypePackApprovalUpdated PackApprovalUpdatedType = "PackApprovalUpdated"
)

