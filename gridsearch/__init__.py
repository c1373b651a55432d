"""gridsearch package."""
