"""Training: the LightningModule and the train stage."""
