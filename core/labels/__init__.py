"""Labels: suspect-label searches, marks and corrected versions."""
