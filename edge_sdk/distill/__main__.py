"""`python -m edge_sdk.distill ...`: the distill command on its own, e.g. under
`accelerate launch -m edge_sdk.distill --params best_params.json ...`."""

from ..errors import friendly_errors
from .command import distill

with friendly_errors():
    distill(prog_name="edge-sdk distill")
