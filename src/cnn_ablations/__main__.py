from cnn_ablations.train import main

main()
