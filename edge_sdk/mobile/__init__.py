"""The mobile demo app (android_demo/): checking a bundle it can run and installing it there."""

from .install import Installed, check_web_bundle, install_bundle

__all__ = ["Installed", "check_web_bundle", "install_bundle"]
