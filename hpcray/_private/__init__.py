"""Ray's ``ray._private`` names that Ray's own documentation uses (floor 8: imports the public
layer and anything below it)."""
from . import internal_api

__all__ = ["internal_api"]
