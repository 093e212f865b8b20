from cnn_ablations.train import cli

cli()
