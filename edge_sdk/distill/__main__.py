"""`python -m edge_sdk.distill ...`: the distill command on its own, e.g. under
`accelerate launch -m edge_sdk.distill --params best_params.json ...`."""

from .command import distill

distill(prog_name="edge-sdk distill")
