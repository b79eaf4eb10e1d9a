"""Recording: frame filter, encoders, the recorder loop and the device identity."""
