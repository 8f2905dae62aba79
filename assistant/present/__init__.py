"""Presentation: HTML, cite lines, the flow sheet and the Word cards."""
