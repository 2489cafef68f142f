"""Quota limits per project and user, admission of resources against them (allocations held
until released), and the usage metered from what ran."""
