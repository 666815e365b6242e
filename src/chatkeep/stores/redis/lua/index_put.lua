-- ARGV: conversation, owner, score, exp ('' none).
put(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 'ok'
