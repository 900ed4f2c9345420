"""A digits classifier with a custom layer, trained on scikit-learn's bundled 8x8 digits."""
