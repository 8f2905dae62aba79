"""What every stage shares: the passage type, text toolkit, settings, sides, input limits, cancellation."""
