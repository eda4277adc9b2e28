"""The real-data demo's data layer: the Home Credit loan book mapped onto Xinlian transactions."""
