"""Every audit action name, in one place. Code records these constants, never literals."""

# Briefs and generations
BRIEF_SUBMITTED = "brief.submitted"
GENERATION_QUEUED = "generation.queued"
GENERATION_STARTED = "generation.started"
GENERATION_AWAITING_REVIEW = "generation.awaiting_review"
GENERATION_RETRY_SCHEDULED = "generation.retry_scheduled"
GENERATION_FAILED = "generation.failed"
GENERATION_CANCELLED = "generation.cancelled"
GENERATION_APPROVAL = "generation.approval"  # one of N approvals, not yet approved
GENERATION_APPROVED = "generation.approved"
GENERATION_REJECTED = "generation.rejected"

# Workflows
WORKFLOW_CREATED = "workflow.created"
WORKFLOW_VERSION_ADDED = "workflow.version_added"
WORKFLOW_VERSION_PUBLISHED = "workflow.version_published"
WORKFLOW_VERSION_RETIRED = "workflow.version_retired"
