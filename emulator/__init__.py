"""The local AWS: API Gateway's REST API emulation (routes, REQUEST authorizer, usage plans, gateway responses) read
from template.yaml, Lambda Web Adapter's translation, the local AWS endpoint, and provisioning from the template.
Imports nothing from gatewayctl, whose `serve` command composes it."""

from pathlib import Path

# The checkout the local gateway serves: template.yaml, samconfig.toml, functions/ and layers/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The local gateway's route that tells gatewayctl where the local stack's tables and API are.
LOCAL_STACK_PATH = "/_local/stack"
