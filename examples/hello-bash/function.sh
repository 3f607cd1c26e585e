# The handler: gets the event as $1, prints its result on stdout; stderr is its log.
function handler () {
  EVENT_DATA=$1
  echo "$EVENT_DATA" 1>&2
  RESPONSE="{\"echo\": $EVENT_DATA, \"runtime\": \"bash\"}"
  echo "$RESPONSE"
}
