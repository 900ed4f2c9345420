"""The training-health monitor: measure a run per layer, judge it with the playbook's rules, and
draw it (``check_training`` for a short run on a private copy, ``watch`` for the user's own loop)."""
