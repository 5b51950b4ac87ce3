"""`python -m edge_sdk.mobile BUNDLE [--app PATH]`: mobile-install on its own."""

from .command import mobile_install

mobile_install(prog_name="edge-sdk mobile-install")
