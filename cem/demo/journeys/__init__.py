"""Customer journeys, one module per family of channels, generated into a shared `Sim`.

Each journey is a function `(sim, customer, t)` that emits its events at epoch-millisecond times
from `t` on. Every random draw comes from `sim.rng`, in a fixed order, so a seed replays exactly.
"""
