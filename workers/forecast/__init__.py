"""The forecast pool's internals: sources and series (frames, sources), the local backend
(local: statsforecast in fitting processes; jobs), the SageMaker backend (sagemaker, runs),
accuracy measures, and where results go (store, results). workers/pools/forecast.py holds
the actors; only that pool imports this package."""
