-- ARGV: conversation.
unlist(ARGV[1])
return 'ok'
