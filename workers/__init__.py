"""Worker side of the bus: settings, broker, job store and lifecycle, pools, ticker."""
