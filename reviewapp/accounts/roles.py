"""The roles of the product. Each is a Django group created by a migration."""

OPERATOR = "operator"
REVIEWER = "reviewer"
WORKFLOW_ADMIN = "workflow_admin"
AUDITOR = "auditor"

ALL = (OPERATOR, REVIEWER, WORKFLOW_ADMIN, AUDITOR)

LABELS = {
    OPERATOR: "Operator",
    REVIEWER: "Reviewer",
    WORKFLOW_ADMIN: "Workflow admin",
    AUDITOR: "Auditor",
}
