"""Every audit action name, in one place. Code records these constants, never literals."""

# Briefs and generations
BRIEF_SUBMITTED = "brief.submitted"
GENERATION_QUEUED = "generation.queued"
GENERATION_HELD = "generation.held"  # created waiting for its campaign's scheduler
GENERATION_RELEASED = "generation.released"  # held -> queued, by the scheduler
GENERATION_PUT_BACK = "generation.put_back"  # queued -> held: its campaign paused
GENERATION_STARTED = "generation.started"
GENERATION_AWAITING_REVIEW = "generation.awaiting_review"
GENERATION_RETRY_SCHEDULED = "generation.retry_scheduled"
GENERATION_FAILED = "generation.failed"
GENERATION_CANCELLED = "generation.cancelled"
GENERATION_APPROVAL = "generation.approval"  # one of N approvals, not yet approved
GENERATION_APPROVED = "generation.approved"
GENERATION_REJECTED = "generation.rejected"  # also a regenerate of an image awaiting review
GENERATION_DECISION_REVERSED = "generation.decision_reversed"  # an undo

# Campaigns
CAMPAIGN_SUBMITTED = "campaign.submitted"
CAMPAIGN_PAUSED = "campaign.paused"  # by its operator, or by the breaker/budget (actor system)
CAMPAIGN_RESUMED = "campaign.resumed"
CAMPAIGN_CANCELLED = "campaign.cancelled"
CAMPAIGN_CHANGED = "campaign.changed"  # breaker or budget edited
CAMPAIGN_CANARY_PASSED = "campaign.canary_passed"
CAMPAIGN_EXPORTED = "campaign.exported"  # the approved set downloaded or written out

# Workflows
WORKFLOW_CREATED = "workflow.created"
WORKFLOW_VERSION_ADDED = "workflow.version_added"
WORKFLOW_VERSION_PUBLISHED = "workflow.version_published"
WORKFLOW_VERSION_RETIRED = "workflow.version_retired"

# Sign-in and access. Failed sign-ins are aggregated: the first failure per (account,
# address) per throttle window gets a row, the lockout row carries the count.
LOGIN_SUCCEEDED = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOGIN_LOCKED_OUT = "auth.locked_out"
LOGGED_OUT = "auth.logout"
ACCESS_DENIED = "auth.access_denied"
ACCESS_DENIED_THROTTLED = "auth.access_denied_throttled"  # later denials in the window unrecorded

# Accounts, whatever the path (admin, shell, command)
USER_CREATED = "user.created"
USER_CHANGED = "user.changed"  # flags, names, password ("changed", never the hash)
USER_DELETED = "user.deleted"
USER_ROLES_CHANGED = "user.groups_changed"
USER_PERMISSIONS_CHANGED = "user.permissions_changed"
GROUP_CHANGED = "group.changed"  # created or renamed (roles are groups by name)
GROUP_DELETED = "group.deleted"

# Workflow settings changed outside the version services (admin, shell)
WORKFLOW_CHANGED = "workflow.changed"
WORKFLOW_DELETED = "workflow.deleted"
