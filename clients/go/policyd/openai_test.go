package policyd_test

// The official OpenAI Go SDK (github.com/openai/openai-go) against the daemon's
// OpenAI-compatible HTTP front door: a service that speaks OpenAI reaches policyd
// by changing its base URL.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

func oai(opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL("http://" + daemon.HTTPAddr + "/v1/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	}
	return openai.NewClient(append(base, opts...)...)
}

func oaiCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// unique keeps every prompt out of the daemon's cache.
func unique(t *testing.T, text string) string {
	return fmt.Sprintf("%s (%s, %d)", text, t.Name(), time.Now().UnixNano())
}

type policydDetail struct {
	RequestID string  `json:"request_id"`
	Status    string  `json:"status"`
	CostUSD   float64 `json:"cost_usd"`
	Attempts  []struct {
		Model        string `json:"model"`
		InputTokens  int64  `json:"input_tokens"`
		OutputTokens int64  `json:"output_tokens"`
	} `json:"attempts"`
	Explanation struct {
		Policy string `json:"policy"`
		Rule   string `json:"rule"`
	} `json:"explanation"`
}

func detailOf(t *testing.T, raw string) policydDetail {
	t.Helper()
	var d policydDetail
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("the policyd field %q: %v", raw, err)
	}
	return d
}

func TestOpenAISDKCompletionCarriesUsageAndPolicydDetail(t *testing.T) {
	client := oai()
	var headers *http.Response
	resp, err := client.Chat.Completions.New(oaiCtx(t), openai.ChatCompletionNewParams{
		Model:    "policyd/default",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(unique(t, "Write a binary search in Go"))},
	}, option.WithHeader("x-policyd-task", "coding"), option.WithResponseInto(&headers))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Object != "chat.completion" || resp.Choices[0].Message.Content == "" {
		t.Fatalf("not a completion with an answer: %+v", resp)
	}
	d := detailOf(t, resp.JSON.ExtraFields["policyd"].Raw())
	if d.Explanation.Rule != "coding-volume" || d.Explanation.Policy != "default" {
		t.Errorf("explanation = %+v, want the default policy's coding-volume rule", d.Explanation)
	}
	var in, out int64
	for _, a := range d.Attempts {
		in, out = in+a.InputTokens, out+a.OutputTokens
	}
	if resp.Usage.PromptTokens != in || resp.Usage.CompletionTokens != out || in == 0 {
		t.Errorf("usage %+v is not the sum over the attempts (%d in, %d out)", resp.Usage, in, out)
	}
	if got := headers.Header.Get("x-policyd-request-id"); got != d.RequestID || got == "" {
		t.Errorf("x-policyd-request-id = %q, want %q", got, d.RequestID)
	}
}

func TestOpenAISDKStreamingAccumulatesTheAnswerAndUsage(t *testing.T) {
	client := oai()
	stream := client.Chat.Completions.NewStreaming(oaiCtx(t), openai.ChatCompletionNewParams{
		Model:         "default",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage(unique(t, "Tell me a story"))},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 3 || !strings.Contains(acc.Choices[0].Message.Content, "simulated") {
		t.Fatalf("%d chunks, answer %q", chunks, acc.Choices[0].Message.Content)
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens == 0 {
		t.Errorf("finish %q, usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
}

func TestOpenAISDKToolCallAndJSONSchema(t *testing.T) {
	client := oai()
	ctx := oaiCtx(t)
	tool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: "get_weather",
		Parameters: shared.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}},
			"required":   []string{"city"},
		},
	})
	// The tool-use rule gates every tool call on its JSON Schema, and the simulated rungs
	// answer flawed on purpose about a third of the time each: both rungs flawed (about one
	// prompt in ten) is a 502 "every answer was rejected". That is the policy working, so
	// such a prompt is replaced by a new one, a few times at most.
	var called *openai.ChatCompletion
	var err error
	for try := 0; try < 5; try++ {
		called, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "default",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(unique(t, "Weather in Oslo?"))},
			Tools:    []openai.ChatCompletionToolUnionParam{tool},
		}, option.WithHeader("x-policyd-task", "tool-use"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || !strings.Contains(apiErr.Message, "every answer was rejected") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	calls := called.Choices[0].Message.ToolCalls
	if called.Choices[0].FinishReason != "tool_calls" || len(calls) != 1 || calls[0].Function.Name != "get_weather" {
		t.Fatalf("want one get_weather call, got %+v", called.Choices[0])
	}
	// The simulated models answer flawed on purpose now and then: the wire shape is what is checked.
	var args map[string]any
	if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil {
		t.Errorf("arguments %q are not a JSON object", calls[0].Function.Arguments)
	}

	schema := map[string]any{
		"type":       "object",
		"properties": map[string]any{"answer": map[string]any{"type": "integer"}},
		"required":   []string{"answer"},
	}
	structured, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "default",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(unique(t, "Six times seven?"))},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "answer", Schema: schema},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(structured.Choices[0].Message.Content), &parsed); err != nil {
		t.Fatalf("response_format json_schema did not give a JSON object: %q", structured.Choices[0].Message.Content)
	}
}

func TestOpenAISDKErrorsCarryStatusAndParam(t *testing.T) {
	client := oai()
	ctx := oaiCtx(t)
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:       "default",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		Temperature: openai.Float(9),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "temperature" {
		t.Fatalf("want a 400 naming temperature, got %v", err)
	}
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-17",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("want a 404 for an unknown model, got %v", err)
	}
}

func TestOpenAISDKListsPoliciesAndCatalogModels(t *testing.T) {
	client := oai()
	page, err := client.Models.List(oaiCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range page.Data {
		ids[m.ID] = true
	}
	if !ids["policyd/default"] || !ids["claude-sonnet-4"] {
		t.Errorf("models %v lack the default policy or a catalog model", ids)
	}
}
