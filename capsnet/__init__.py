"""A paper-faithful CapsNet (Sabour, Frosst & Hinton 2017) for MNIST."""
from .losses import capsule_loss, margin_loss, reconstruction_sse
from .model import (
    CapsNet,
    CapsNetConfig,
    CapsNetOutput,
    PrimaryPosition,
    primary_capsule_index,
    primary_capsule_position,
    receptive_field,
)
from .routing import RoutingTrace, dynamic_routing, squash, traced_routing

__all__ = [
    "CapsNet",
    "CapsNetConfig",
    "CapsNetOutput",
    "PrimaryPosition",
    "RoutingTrace",
    "capsule_loss",
    "dynamic_routing",
    "load_pretrained",
    "margin_loss",
    "primary_capsule_index",
    "primary_capsule_position",
    "receptive_field",
    "reconstruction_sse",
    "squash",
    "traced_routing",
]


def load_pretrained(path=None, device="cpu"):
    """The shipped (or given) checkpoint as a CapsNet in eval mode."""
    from .checkpoint import load_pretrained as _load

    return _load(path, device=device)
