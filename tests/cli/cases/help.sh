run $RETAPE help import
run $RETAPE import --help
run $RETAPE nosuch
run $RETAPE import --dbb x
run $RETAPE help nosuch
run $RETAPE --help
run $RETAPE help test
