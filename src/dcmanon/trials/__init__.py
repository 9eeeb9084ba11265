"""Clinical trials: subject tables, trial attributes, mapping store, the encrypted way back."""
