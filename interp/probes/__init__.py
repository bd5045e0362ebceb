"""The probes: one technique per module (interventions, attention, attributions, circuits, feature
optimisation, logit lens, neurons, QK/OV, scrubbing). Pure computation on the model layer."""
